"""Background work for the GUI (QtCore only): each worker owns its engine objects and talks by signals."""
