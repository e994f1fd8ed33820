"""The simulated site: login, follow lists, thumbnails."""
