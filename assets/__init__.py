"""Layerloom's shipped data: the app icon, category icons, stylesheets (no code).

A package only so that wheels and editable installs carry it; read it through
``builder.assets``."""
