"""Video input for mining: decoding, moving-object proposals and tracking."""

from selfsup.video.decode import VideoError, VideoInfo, read_frames
from selfsup.video.proposals import MotionProposer
from selfsup.video.track import NccTracker, Track

__all__ = ["MotionProposer", "NccTracker", "Track", "VideoError", "VideoInfo", "read_frames"]
