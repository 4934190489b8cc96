"""The job tests use the imaging fixtures (real weights, real slide crop, synthetic slides)."""

from tests.unit.imaging.conftest import assets, make_slide, nuclei_model, real_crop, sample_slide

__all__ = ["assets", "make_slide", "nuclei_model", "real_crop", "sample_slide"]
