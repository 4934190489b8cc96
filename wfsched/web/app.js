// The wfsched web UI, as native ES modules: no build step, same origin as the API. This entry
// chooses the user and routes between the home page (submit.js, list.js) and one workflow
// (workflow.js); api.js makes the calls, stream.js keeps them live.

import { session } from "./api.js";
import { $ } from "./dom.js";
import { workflowList } from "./list.js";
import { hideSubmitError } from "./submit.js";
import { workflowView } from "./workflow.js";

const USER_KEY = "wfsched.user";
// The service's rule for a user ID (the input's pattern says the same).
const USER_PATTERN = /^[A-Za-z0-9._@-]{1,128}$/;

const userForm = $("[data-testid=user-form]");
const userInput = $("#user-input");

function setUser(user) {
  session.user = user;
  localStorage.setItem(USER_KEY, user);
  userInput.value = user;
  document.body.dataset.user = user;
  route();
}

userForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const user = userInput.value.trim();
  if (!USER_PATTERN.test(user)) {
    userInput.setCustomValidity("1 to 128 characters: letters, digits, . _ @ -");
    userInput.reportValidity();
    return;
  }
  userInput.setCustomValidity("");
  setUser(user);
});
userInput.addEventListener("input", () => userInput.setCustomValidity(""));

// #/workflows/<id> shows that workflow, anything else the home page; nothing without a user.
function route() {
  const noUser = !session.user;
  $("#no-user").hidden = !noUser;
  const match = location.hash.match(/^#\/workflows\/([^/]+)$/);
  $("#home-view").hidden = noUser || Boolean(match);
  $("#workflow-view").hidden = noUser || !match;
  workflowList.hide();
  workflowView.hide();
  if (noUser) {
    userInput.focus();
    return;
  }
  if (match) {
    workflowView.show(decodeURIComponent(match[1]));
  } else {
    document.title = "wfsched";
    hideSubmitError();
    workflowList.show();
  }
}

window.addEventListener("hashchange", route);
const stored = localStorage.getItem(USER_KEY) || "";
if (USER_PATTERN.test(stored)) setUser(stored);
else route();
