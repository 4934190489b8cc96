"""JobExecutor runs real job runners in threads, stops them, and re-reports instead of re-running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydantic import BaseModel

from tests.support.job_types import JOB_TYPES
from wfsched.config import Settings
from wfsched.control.executor import JobExecutor
from wfsched.control.messages import JobReport, ProgressReport, Report, StartJob
from wfsched.jobs.registry import JobContext, JobType
from wfsched.models.state import JobRecord, JobResult, JobStatus
from wfsched.observe import logs


class Reports:
    def __init__(self) -> None:
        self.finished: list[JobReport] = []
        self.progress: list[tuple[str, int, int]] = []
        self.finished_in_thread: list[int] = []
        self.done = threading.Event()

    def on_report(self, report: Report) -> None:
        if isinstance(report, ProgressReport):
            self.progress.append((report.job_id, report.done, report.total))
        else:
            self.finished.append(report)
            self.finished_in_thread.append(threading.get_ident())
            self.done.set()


def host(tmp_path: Path, reports: Reports) -> JobExecutor:
    settings = Settings(results_dir=tmp_path / "results")
    return JobExecutor(settings, {t.name: t for t in JOB_TYPES}, reports.on_report)


def record(job_type: str, params: dict[str, object], job_id: str = "j") -> JobRecord:
    return JobRecord(
        workflow_id="w", job_id=job_id, index=0, branch="m", job_type=job_type, image_path="/x", params=params
    )


def start(job_type: str, params: dict[str, object], job_id: str = "j", then: StartJob | None = None) -> StartJob:
    return StartJob(user_id="alice", job=record(job_type, params, job_id), upstream=[], then=then)


def test_a_job_runs_reports_progress_and_gets_its_output_folder(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    lanes.start(start("sleep", {"duration_s": 0.01, "steps": 2}))
    assert reports.done.wait(10)
    (report,) = reports.finished
    assert report.status == JobStatus.succeeded and report.result == {"artifacts": [], "slept_s": 0.01}
    assert report.started_at <= report.finished_at
    assert reports.progress[-1] == ("j", 2, 2)
    assert (tmp_path / "results" / "alice" / "w" / "j").is_dir()


def test_failure_and_stop(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    lanes.start(start("sleep", {"fail": True}))
    assert reports.done.wait(10)
    assert reports.finished[0].status == JobStatus.failed
    assert reports.finished[0].error == "job 'j' failed on purpose"
    reports.done.clear()
    lanes.start(start("wait_signal", {"signal_path": str(tmp_path / "never")}, job_id="k"))
    assert lanes.stop("w", "k")
    assert reports.done.wait(10)
    assert reports.finished[1].status == JobStatus.cancelled
    assert not lanes.stop("w", "k")


def test_a_resent_start_re_reports_and_does_not_run_again(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    record = tmp_path / "record"
    lanes.start(start("sleep", {"record_path": str(record)}))
    assert reports.done.wait(10)
    reports.done.clear()
    lanes.start(start("sleep", {"record_path": str(record)}))
    assert reports.done.wait(10)
    assert len(reports.finished) == 2 and reports.finished[0] == reports.finished[1]
    assert record.read_text().count("\n") == 1
    assert lanes.known([("w", "j"), ("w", "other")]) == [("w", "j")]


def test_an_unknown_job_type_fails_the_job_not_the_host(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    lanes.start(start("vanished", {}))
    assert reports.done.wait(10)
    assert reports.finished[0].status == JobStatus.failed
    assert "not registered" in (reports.finished[0].error or "")


def test_the_next_job_starts_in_the_lane_when_its_predecessor_ends(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    log = tmp_path / "record"
    lanes.start(
        start(
            "sleep",
            {"fail": True, "record_path": str(log)},
            "first",
            then=start("sleep", {"record_path": str(log)}, "second"),
        )
    )
    deadline = time.monotonic() + 10
    while len(reports.finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first, second = reports.finished
    assert (first.job_id, first.status) == ("first", JobStatus.failed)  # order edges carry no failure
    assert (second.job_id, second.status) == ("second", JobStatus.succeeded)
    assert first.finished_at <= second.started_at
    # The next job ran in the thread its predecessor ended in: no hop to another thread.
    assert reports.finished_in_thread[0] == reports.finished_in_thread[1]
    # The scheduler's own start of the same job, arriving later, does not run it again.
    lanes.start(start("sleep", {"record_path": str(log)}, "second"))
    assert log.read_text().split() == ["w", "first", "w", "second"]


def test_a_stopped_or_cancelled_predecessor_starts_no_continuation(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    log = tmp_path / "record"
    signal = str(tmp_path / "never")
    lanes.start(
        start("wait_signal", {"signal_path": signal}, "held", then=start("sleep", {"record_path": str(log)}, "a"))
    )
    lanes.stop("w", "a")  # the continuation is dropped before it starts
    lanes.start(
        start("wait_signal", {"signal_path": signal}, "held2", then=start("sleep", {"record_path": str(log)}, "b"))
    )
    lanes.stop("w", "held")
    lanes.stop("w", "held2")  # ends cancelled: its continuation must not run
    deadline = time.monotonic() + 10
    while len(reports.finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert sorted(r.job_id for r in reports.finished) == ["held", "held2"]
    assert not log.exists()


def test_a_result_whose_artifacts_are_not_names_fails_the_job(tmp_path: Path) -> None:
    reports = Reports()

    class NoParams(BaseModel):
        pass

    bad = JobType("bad_result", NoParams, lambda context: {"artifacts": "cells.geojson"})
    lanes = JobExecutor(Settings(results_dir=tmp_path / "results"), {"bad_result": bad}, reports.on_report)
    lanes.start(start("bad_result", {}))
    assert reports.done.wait(10)
    (report,) = reports.finished
    assert report.status == JobStatus.failed and report.result is None
    assert report.error is not None and "artifacts" in report.error


class NoParams(BaseModel):
    pass


def report_fields(ctx: JobContext) -> dict[str, object]:
    return {"log_fields": ctx.log_fields, "context": logs.current()}


def test_a_job_and_its_continuation_run_in_their_request_tenant_workflow_and_job_context(tmp_path: Path) -> None:
    reports = Reports()
    lanes = JobExecutor(
        Settings(results_dir=tmp_path), {"fields": JobType("fields", NoParams, report_fields)}, reports.on_report
    )
    following = StartJob("alice", record("fields", {}, "b"), upstream=[], request_id="req-9")
    first = StartJob("alice", record("fields", {}, "a"), upstream=[], then=following, request_id="req-9")
    lanes.start(first)
    deadline = time.monotonic() + 10
    while len(reports.finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    for report, job_id in zip(reports.finished, ("a", "b"), strict=True):
        expected = {"request_id": "req-9", "tenant": "alice", "workflow_id": "w", "job_id": job_id}
        assert report.result is not None
        assert report.result["log_fields"] == report.result["context"] == expected


def report_upstream(ctx: JobContext) -> dict[str, object]:
    return {"upstream": {job_id: job.result for job_id, job in ctx.upstream.items()}, "mine": ctx.job_id}


def test_a_continuation_gets_the_upstream_jobs_it_was_handed_with(tmp_path: Path) -> None:
    reports = Reports()
    lanes = JobExecutor(
        Settings(results_dir=tmp_path), {"upstream": JobType("upstream", NoParams, report_upstream)}, reports.on_report
    )
    dependency = record("upstream", {}, "x").model_copy(
        update={"status": JobStatus.succeeded, "result": JobResult(artifacts=["mask.png"])}
    )
    following = StartJob("alice", record("upstream", {}, "b"), upstream=[dependency])
    lanes.start(StartJob("alice", record("upstream", {}, "a"), upstream=[], then=following))
    deadline = time.monotonic() + 10
    while len(reports.finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    results = {report.job_id: report.result for report in reports.finished}
    assert results == {
        "a": {"artifacts": [], "upstream": {}, "mine": "a"},
        "b": {"artifacts": [], "upstream": {"x": {"artifacts": ["mask.png"]}}, "mine": "b"},
    }


def test_a_continuation_handed_on_before_its_predecessor_ended_reads_that_ones_result(tmp_path: Path) -> None:
    reports = Reports()
    lanes = JobExecutor(
        Settings(results_dir=tmp_path), {"upstream": JobType("upstream", NoParams, report_upstream)}, reports.on_report
    )
    predecessor = record("upstream", {}, "a")  # as the scheduler had it when it handed `b` on: running
    following = record("upstream", {}, "b").model_copy(update={"depends_on": ["a"]})
    lanes.start(StartJob("alice", predecessor, [], then=StartJob("alice", following, upstream=[predecessor])))
    deadline = time.monotonic() + 10
    while len(reports.finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    results = {report.job_id: report.result for report in reports.finished}
    assert results["b"] == {
        "artifacts": [],
        "upstream": {"a": {"artifacts": [], "upstream": {}, "mine": "a"}},
        "mine": "b",
    }


def test_a_continuation_that_depends_on_its_predecessor_starts_only_after_its_success(tmp_path: Path) -> None:
    reports = Reports()
    lanes = host(tmp_path, reports)
    log = tmp_path / "record"

    def after(predecessor: str, job_id: str) -> StartJob:
        following = record("sleep", {"record_path": str(log)}, job_id).model_copy(update={"depends_on": [predecessor]})
        return StartJob(user_id="alice", job=following, upstream=[])

    lanes.start(start("sleep", {"fail": True}, "failing", then=after("failing", "after-failure")))
    lanes.start(start("sleep", {}, "succeeding", then=after("succeeding", "after-success")))
    deadline = time.monotonic() + 10
    while len(reports.finished) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert sorted((r.job_id, r.status) for r in reports.finished) == [
        ("after-success", JobStatus.succeeded),
        ("failing", JobStatus.failed),
        ("succeeding", JobStatus.succeeded),
    ]
    assert log.read_text().split() == ["w", "after-success"]
