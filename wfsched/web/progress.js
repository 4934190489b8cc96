// Statuses and percentages as the server defines them (wfsched/models/state.py), so that the page
// shows the figures of GET /api/progress/{id}. The events carry done/total, not a percent, hence
// the page computes it, here and nowhere else.

// The finished statuses come from the server, written into the page.
const FINISHED = JSON.parse(document.getElementById("finished-statuses").textContent);
export const FINISHED_WORKFLOW = new Set(FINISHED.workflow);
export const FINISHED_JOB = new Set(FINISHED.job);

// JobProgress.percent: 100 once finished whatever the outcome, done/total while running, else 0;
// rounded to 2 decimals.
export function jobPercent(job) {
  if (FINISHED_JOB.has(job.status)) return 100;
  if (job.status === "running" && job.progress_total) {
    return roundHundredths((100 * job.progress_done) / job.progress_total);
  }
  return 0;
}

// ProgressSnapshot.percent: the mean of the jobs' (rounded) percents, rounded to 2 decimals.
// Summed in the order the server sums them, the workflow's job order.
export function workflowPercent(jobs) {
  if (!jobs.length) return 0;
  return roundHundredths(jobs.reduce((sum, job) => sum + jobPercent(job), 0) / jobs.length);
}

// Python's round(x, 2) for x >= 0: the hundredth nearest to x's exact binary value, an exact tie
// to the even one. toFixed also rounds the exact value but breaks ties upwards; a tie is an
// expansion ending in that 5 (toFixed(100) is exact for these magnitudes).
function roundHundredths(x) {
  let hundredths = Number(x.toFixed(2).replace(".", ""));
  if (hundredths % 2 === 1 && /\.\d\d50*$/.test(x.toFixed(100))) hundredths -= 1;
  return hundredths / 100;
}
