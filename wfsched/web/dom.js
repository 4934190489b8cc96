// Building and finding page elements: the only DOM helpers the page's modules share.

export const $ = (selector, root = document) => root.querySelector(selector);

// A new element: attrs sets class, text, on<event> listeners, dataset and plain attributes
// (null, undefined and false leave an attribute out); children skip null, undefined and false.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}
