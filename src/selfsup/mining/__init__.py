"""Mining an object graph from video: tracks, intra/inter edges, transitive pairs (Wang et al.)."""
