"""Qt widgets: the desktop app's windows and views."""
