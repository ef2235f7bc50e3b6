"""Fakes of the services the bridge talks to, served over real HTTP for tests."""
