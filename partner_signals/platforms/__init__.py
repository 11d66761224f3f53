"""Two-way delivery platforms: external orders, status calls back to each platform, its
webhook registration and the sync log (docs/platforms.md)."""
