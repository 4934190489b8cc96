"""What actors send each other arrives as it was sent."""

from __future__ import annotations

from ray import cloudpickle

from wfsched.control.messages import JobReport, Pickled, StartJob
from wfsched.models.state import JobRecord, JobStatus


def test_a_pickled_batch_arrives_as_the_list_itself() -> None:
    job = JobRecord(workflow_id="w1", job_id="j1", index=0, branch="b0", job_type="sleep", image_path="s.svs")
    after = job.model_copy(update={"job_id": "j2", "index": 1, "depends_on": ["j1"]})
    batch = [
        StartJob(user_id="alice", job=job, upstream=[], then=StartJob(user_id="alice", job=after, upstream=[job])),
        JobReport("w1", "j1", JobStatus.succeeded, 1.0, 2.0, {"artifacts": ["mask.png"]}, None),
    ]

    received = cloudpickle.loads(cloudpickle.dumps(Pickled(batch)))  # as Ray sends an argument

    assert type(received) is list
    assert received == batch
    assert received[0].then.upstream[0].job_id == "j1"
