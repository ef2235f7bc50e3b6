"""oz-bridge: Oz cloud agent runs, told where teams already talk."""
