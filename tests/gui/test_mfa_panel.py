"""The MFA panel driven as a user would: clicks, typing, file dialogs, re-authentication, an
emulated FIDO2 key; the time is injected through the controller's clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pyotp
import pytest
import segno
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap, QScreen
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from its_desktop.core import totp
from its_desktop.factors.base import QuietPrompter
from its_desktop.services import qr
from its_desktop.ui.dialogs.reauth import ReauthDialog
from its_desktop.ui.panels.mfa import AccountColumn, MfaPanel, SlotColumn
from tests.conftest import PASSWORD

SECRET = "KRSXG5CTMVRXEZLUKVXGS4LVMVPQ"
URI = f"otpauth://totp/Acme%20Exchange:desk@acme?secret={SECRET}&issuer=Acme%20Exchange"
START = 1_800_000_011.0  # 11 s into a 30-second step
LEFT = Qt.MouseButton.LeftButton


class Clock:
    """The controller's clock, moved by the test."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.at, timezone.utc)


@pytest.fixture
def clock(unlocked_controller) -> Clock:
    clock = Clock(START)
    unlocked_controller.clock = clock
    return clock


@pytest.fixture
def panel(qtbot, unlocked_controller, clock) -> MfaPanel:
    panel = MfaPanel(unlocked_controller)
    qtbot.addWidget(panel)
    panel.resize(1000, 800)
    panel.show()
    unlocked_controller.unlocked.emit()
    return panel


def cell(panel: MfaPanel, row: int, column: int) -> str:
    return panel.accounts_view.model().index(row, column).data()


def click_row(qtbot, view: QAbstractItemView, row: int) -> None:
    rect = view.visualRect(view.model().index(row, 0))
    qtbot.mouseClick(view.viewport(), LEFT, pos=rect.center())
    assert view.selectionModel().selectedRows()[0].row() == row


def shown_qr(label: QLabel) -> list[str]:
    """What a phone's camera would read from a QR code on screen."""
    image = label.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    return qr.decode_pixels(bytes(image.constBits()), image.width(), image.height(), "gray", image.bytesPerLine())


def add_by_uri(qtbot, panel: MfaPanel, uri: str, name: str | None = None) -> None:
    qtbot.keyClicks(panel.uri_edit, uri)
    qtbot.mouseClick(panel.add_uri_button, LEFT)
    assert panel.uri_edit.text() == ""
    assert panel.pending_box.isVisible(), panel.status.text()
    if name is not None:
        panel.pending_name.clear()
        qtbot.keyClicks(panel.pending_name, name)
    rows = panel.accounts.rowCount()
    qtbot.mouseClick(panel.save_pending_button, LEFT)
    assert panel.accounts.rowCount() == rows + 1, panel.status.text()


def test_scan_a_qr_image_file_and_see_live_codes_with_a_countdown(qtbot, panel, clock, tmp_path, monkeypatch):
    image = tmp_path / "acme.png"
    segno.make(URI, error="m", micro=False).save(str(image), kind="png", scale=5)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(image), "Images"))
    qtbot.mouseClick(panel.scan_file_button, LEFT)
    qtbot.waitUntil(panel.pending_box.isVisible, timeout=10_000)
    assert panel.pending_label.text().startswith("Acme Exchange: desk@acme (TOTP, SHA1, 6 digits, 30 s")
    assert panel.pending_name.text() == "totp/Acme Exchange/desk@acme"
    panel.pending_name.clear()
    qtbot.keyClicks(panel.pending_name, "exchanges/acme/totp")
    qtbot.mouseClick(panel.save_pending_button, LEFT)
    assert not panel.pending_box.isVisible()
    assert panel.accounts.rowCount() == 1
    assert cell(panel, 0, AccountColumn.NAME) == "exchanges/acme/totp"
    assert cell(panel, 0, AccountColumn.ISSUER) == "Acme Exchange"
    assert cell(panel, 0, AccountColumn.CODE) == pyotp.TOTP(SECRET).at(START)
    assert cell(panel, 0, AccountColumn.LEFT) == "19 s"

    # as the clock moves, the timer tells the view to repaint the countdown, then the new code
    clock.at = START + 7
    with qtbot.waitSignal(panel.accounts.dataChanged, timeout=3_000) as repaint:
        pass
    assert repaint.args[0].column() == AccountColumn.CODE and repaint.args[1].column() == AccountColumn.LEFT
    assert cell(panel, 0, AccountColumn.LEFT) == "12 s"
    assert cell(panel, 0, AccountColumn.CODE) == pyotp.TOTP(SECRET).at(START)
    clock.at = START + 20
    with qtbot.waitSignal(panel.accounts.dataChanged, timeout=3_000):
        pass
    assert cell(panel, 0, AccountColumn.LEFT) == "29 s"
    assert cell(panel, 0, AccountColumn.CODE) == pyotp.TOTP(SECRET).at(START + 20) != pyotp.TOTP(SECRET).at(START)

    vault = panel.controller.vault
    stored = vault.peek("exchanges/acme/totp")
    assert stored.type.value == "totp" and stored.value == SECRET
    assert SECRET not in panel.status.text() and SECRET not in panel.pending_label.text()


def test_paste_uris_for_sha512_steam_and_hotp_accounts(qtbot, panel, clock, qtmodeltester):
    add_by_uri(qtbot, panel, f"otpauth://totp/Desk:ops?secret={SECRET}&algorithm=SHA512&digits=8&period=60",
               "desk/ops")
    add_by_uri(qtbot, panel, f"otpauth://totp/Steam:gabe?secret={SECRET}&issuer=Steam&encoder=steam", "games/steam")
    add_by_uri(qtbot, panel, f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=7", "bank/ada")
    names = [cell(panel, r, AccountColumn.NAME) for r in range(3)]
    assert names == ["bank/ada", "desk/ops", "games/steam"]
    assert cell(panel, 1, AccountColumn.CODE) == pyotp.TOTP(SECRET, digits=8, digest="sha512", interval=60).at(START)
    assert cell(panel, 1, AccountColumn.LEFT) == "49 s"
    assert cell(panel, 2, AccountColumn.CODE) == totp.steam(totp.decode_secret(SECRET), START)
    assert cell(panel, 0, AccountColumn.CODE) == "press Next"  # an HOTP code is made only when asked for

    click_row(qtbot, panel.accounts_view, 0)
    qtbot.mouseClick(panel.next_code_button, LEFT)
    assert cell(panel, 0, AccountColumn.CODE) == pyotp.HOTP(SECRET).at(7)
    assert panel.controller.vault.peek("bank/ada").fields["counter"] == "8"
    clock.at = START + 31  # shown for 30 s, then gone
    qtbot.waitUntil(lambda: cell(panel, 0, AccountColumn.CODE) == "press Next", timeout=3_000)
    qtmodeltester.check(panel.accounts)
    qtmodeltester.check(panel.slots)

    # a malformed URI says why in one line and never repeats the secret
    qtbot.keyClicks(panel.uri_edit, f"otpauth://totp/x?secret={SECRET}&algorithm=MD5")
    qtbot.keyClick(panel.uri_edit, Qt.Key.Key_Return)
    assert "algorithm" in panel.status.text() and SECRET not in panel.status.text()
    assert not panel.pending_box.isVisible()


def test_scan_the_clipboard_and_the_screen(qtbot, panel, monkeypatch):
    image = QImage()
    image.loadFromData(qr.encode_png(URI, scale=4), "PNG")
    QGuiApplication.clipboard().setImage(image)
    qtbot.mouseClick(panel.scan_clipboard_button, LEFT)
    qtbot.waitUntil(panel.pending_box.isVisible, timeout=10_000)
    assert panel.pending_name.text() == "totp/Acme Exchange/desk@acme"
    qtbot.mouseClick(panel.discard_pending_button, LEFT)
    assert not panel.pending_box.isVisible() and panel.pending_label.text() == ""
    QGuiApplication.clipboard().clear()

    # a screenshot with the QR code somewhere on it
    screen = QImage(900, 600, QImage.Format.Format_RGB32)
    screen.fill(Qt.GlobalColor.white)
    from PySide6.QtGui import QPainter

    painter = QPainter(screen)
    painter.drawImage(500, 200, image)
    painter.end()
    monkeypatch.setattr(QScreen, "grabWindow", lambda self, *args: QPixmap.fromImage(screen))
    qtbot.mouseClick(panel.scan_screen_button, LEFT)
    qtbot.waitUntil(panel.pending_box.isVisible, timeout=10_000)
    assert panel.pending_label.text().startswith("Acme Exchange: desk@acme")


def test_create_a_secret_for_a_service_and_confirm_a_code_from_the_phone(qtbot, panel, clock):
    qtbot.mouseClick(panel.new_secret_button, LEFT)
    dialog = panel.new_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.issuer, "Bot dashboard")
    qtbot.keyClicks(dialog.account, "trader@desk")
    dialog.algorithm.setCurrentText("SHA256")
    assert not dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.generate_button, LEFT)
    (scanned,) = shown_qr(dialog.qr_label)  # what the phone reads
    phone = totp.parse_uri(scanned)
    assert (phone.issuer, phone.account, phone.algorithm) == ("Bot dashboard", "trader@desk", "SHA256")
    assert dialog.secret_text.text().replace(" ", "") == phone.secret  # for typing in by hand
    assert dialog.name.text() == "totp/Bot dashboard/trader@desk"
    phone_app = pyotp.TOTP(phone.secret, digest="sha256")

    wrong = str((int(phone_app.at(START)) + 1) % 1_000_000).zfill(6)
    qtbot.keyClicks(dialog.code, wrong)
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert "does not match" in dialog.status.text() and panel.accounts.rowCount() == 0

    clock.at = START + 25  # the phone shows the code of the next step already: still accepted
    qtbot.keyClicks(dialog.code, phone_app.at(START + 30))
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert not dialog.isVisible() and dialog.qr_label.pixmap().isNull() and dialog.secret_text.text() == ""
    assert panel.accounts.rowCount() == 1
    stored = panel.controller.vault.peek("totp/Bot dashboard/trader@desk")
    assert stored.value == phone.secret and stored.fields["algorithm"] == "SHA256"
    assert cell(panel, 0, AccountColumn.CODE) == phone_app.at(START + 25)


def test_show_an_accounts_qr_only_after_reauthentication(qtbot, panel):
    add_by_uri(qtbot, panel, URI, "exchanges/acme")
    qtbot.mouseClick(panel.show_qr_button, LEFT)
    assert panel.reauth_dialog is None and "Select" in panel.status.text()
    click_row(qtbot, panel.accounts_view, 0)
    qtbot.mouseClick(panel.show_qr_button, LEFT)
    reauth = panel.reauth_dialog
    assert isinstance(reauth, ReauthDialog) and reauth.isVisible()

    qtbot.keyClicks(reauth.password, "not the password")
    qtbot.mouseClick(reauth.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    qtbot.waitUntil(lambda: "did not match" in reauth.status.text(), timeout=20_000)
    assert panel.qr_dialog is None

    qtbot.keyClicks(reauth.password, PASSWORD)
    qtbot.mouseClick(reauth.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    qtbot.waitUntil(lambda: panel.qr_dialog is not None and panel.qr_dialog.isVisible(), timeout=20_000)
    assert shown_qr(panel.qr_dialog.qr_label) == [totp.parse_uri(URI).uri()]
    events = [(r.event.op, r.event.outcome, r.event.name) for r in panel.controller.vault.audit_records()]
    assert ("reauth", "failed", None) in events and ("reauth", "ok", None) in events
    assert events[-1] == ("export", "ok", "exchanges/acme")
    qtbot.mouseClick(panel.qr_dialog.done_button, LEFT)
    assert panel.qr_dialog.qr_label.pixmap().isNull()


def _kinds(panel: MfaPanel) -> list[str]:
    return [panel.slots.index(r, SlotColumn.KIND).data() for r in range(panel.slots.rowCount())]


def test_enroll_list_and_remove_a_fido2_key_and_make_a_recovery_code(qtbot, panel):
    assert len(_kinds(panel)) == 2  # the password and the recovery code
    qtbot.mouseClick(panel.add_fido2_button, LEFT)
    dialog = panel.key_dialog
    assert dialog is not None and dialog.isVisible() and dialog.pin.isVisible()
    qtbot.keyClicks(dialog.password, "not the password")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    assert dialog.password.text() == ""
    qtbot.waitUntil(lambda: "not the vault's master password" in panel.status.text(), timeout=20_000)
    assert len(_kinds(panel)) == 2

    qtbot.mouseClick(panel.add_fido2_button, LEFT)
    qtbot.keyClicks(panel.key_dialog.key_name, "backup Solo")
    qtbot.keyClicks(panel.key_dialog.password, PASSWORD)
    qtbot.keyClick(panel.key_dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(_kinds(panel)) == 3, timeout=20_000)
    row = next(r for r, kind in enumerate(_kinds(panel)) if kind.startswith("FIDO2"))
    assert panel.slots.index(row, SlotColumn.NAME).data() == "backup Solo"
    assert panel.slots.index(row, SlotColumn.CREATED).data()[:2] == "20"
    assert "Enrolled" in panel.status.text()

    codes = []
    for _ in range(2):
        qtbot.mouseClick(panel.recovery_button, LEFT)
        assert panel.recovery_code.isVisible() and len(panel.recovery_code.text()) >= 16
        codes.append(panel.recovery_code.text())
    assert codes[0] != codes[1] and _kinds(panel).count("Recovery code") == 1  # the old one is revoked
    qtbot.mouseClick(panel.recovery_done, LEFT)
    assert not panel.recovery_code.isVisible() and panel.recovery_code.text() == ""

    row = next(r for r, kind in enumerate(_kinds(panel)) if kind.startswith("FIDO2"))
    click_row(qtbot, panel.slots_view, row)
    qtbot.mouseClick(panel.remove_slot_button, LEFT)
    assert panel.remove_box is not None and panel.remove_box.isVisible()
    qtbot.mouseClick(panel.remove_box.button(QMessageBox.StandardButton.Yes), LEFT)
    assert not any(kind.startswith("FIDO2") for kind in _kinds(panel))

    # the password slot is the last way in besides the recovery code: refused, and said so
    row = _kinds(panel).index("Master password")
    click_row(qtbot, panel.slots_view, row)
    qtbot.mouseClick(panel.remove_slot_button, LEFT)
    qtbot.mouseClick(panel.remove_box.button(QMessageBox.StandardButton.Yes), LEFT)
    assert "last way in" in panel.status.text()
    assert "Master password" in _kinds(panel)


def _interactive(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)
    found = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, kinds):
            continue
        parent, inside_other = widget.parentWidget(), False
        while parent is not None and parent is not root:  # the views' own headers, ReauthDialog's insides
            inside_other |= isinstance(parent, (QAbstractItemView, QAbstractSpinBox, QComboBox, ReauthDialog))
            parent = parent.parentWidget()
        if not inside_other:
            found.append(widget)
    return found


def test_every_interactive_widget_has_an_accessible_name(qtbot, panel):
    add_by_uri(qtbot, panel, URI, "exchanges/acme")
    qtbot.mouseClick(panel.new_secret_button, LEFT)
    qtbot.mouseClick(panel.add_yubikey_button, LEFT)
    click_row(qtbot, panel.slots_view, 0)
    qtbot.mouseClick(panel.remove_slot_button, LEFT)
    widgets = _interactive(panel)
    assert len(widgets) > 30
    unnamed = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in widgets
               if not w.accessibleName() and w.isVisibleTo(w.window())]
    assert unnamed == []


def test_locking_leaves_nothing_in_the_panel(qtbot, panel, unlocked_controller):
    add_by_uri(qtbot, panel, URI, "exchanges/acme")
    add_by_uri(qtbot, panel, f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=1", "bank/ada")
    click_row(qtbot, panel.accounts_view, 0)
    qtbot.mouseClick(panel.next_code_button, LEFT)
    qtbot.keyClicks(panel.uri_edit, URI)  # typed, not yet added
    qtbot.mouseClick(panel.recovery_button, LEFT)
    qtbot.mouseClick(panel.new_secret_button, LEFT)
    qtbot.mouseClick(panel.new_dialog.generate_button, LEFT)
    new_dialog = panel.new_dialog
    qtbot.mouseClick(panel.add_fido2_button, LEFT)
    qtbot.keyClicks(panel.key_dialog.password, PASSWORD)
    key_dialog = panel.key_dialog
    click_row(qtbot, panel.accounts_view, 1)
    qtbot.mouseClick(panel.show_qr_button, LEFT)
    qtbot.keyClicks(panel.reauth_dialog.password, PASSWORD)
    qtbot.mouseClick(panel.reauth_dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    qtbot.waitUntil(lambda: panel.qr_dialog is not None and panel.qr_dialog.isVisible(), timeout=20_000)
    qr_dialog = panel.qr_dialog
    assert panel.timer.isActive()

    unlocked_controller.lock()

    assert panel.accounts.rowCount() == 0 and panel.slots.rowCount() == 0
    assert not panel.timer.isActive()
    for dialog in (new_dialog, key_dialog, qr_dialog):
        assert not dialog.isVisible()
    assert new_dialog.qr_label.pixmap().isNull() and qr_dialog.qr_label.pixmap().isNull()
    assert new_dialog.secret_text.text() == "" and key_dialog.password.text() == ""
    assert panel.new_dialog is panel.qr_dialog is panel.key_dialog is None
    for widget in panel.findChildren(QLineEdit):
        if not isinstance(widget.parentWidget(), QAbstractSpinBox):  # digits and period keep their settings
            assert widget.text() == "", widget.accessibleName()
    for label in panel.findChildren(QLabel):
        assert label.pixmap().isNull() and SECRET not in label.text()
        assert not any(ch.isdigit() for ch in label.text() if label.accessibleName() == "MFA status")
    assert not panel.pending_box.isVisible() and not panel.recovery_code.isVisible()

    # unlocking again shows the accounts, with codes computed afresh
    unlocked_controller.session.unlock(PASSWORD, QuietPrompter())
    unlocked_controller.unlocked.emit()
    assert panel.accounts.rowCount() == 2 and panel.timer.isActive()
