"""Datasets: sources (CIFAR-10 archive/download, image folders, synthetic) and the shard format."""
