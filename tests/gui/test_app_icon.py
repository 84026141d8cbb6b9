"""The app icon ships in resources/ and loads as an image Qt can show."""

from PySide6.QtGui import QIcon

from studio.engine.presets import APP_ICON


def test_app_icon_loads(qapp):
    icon = QIcon(str(APP_ICON))
    assert not icon.isNull()
    assert icon.pixmap(64, 64).width() == 64
