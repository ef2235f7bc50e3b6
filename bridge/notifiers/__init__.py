"""Target types: one module each behind the ``Notifier`` protocol."""
