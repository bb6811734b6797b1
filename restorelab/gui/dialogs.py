"""Every message box of the application goes through here (tests patch ``QMessageBox``)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """A readable error with the traceback under "Show Details…"."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def info(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


def confirm(parent: QWidget | None, title: str, question: str) -> bool:
    """Yes/No question; No is the default."""
    r = QMessageBox.question(
        parent,
        title,
        question,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return r == QMessageBox.StandardButton.Yes


def save_discard_cancel(parent: QWidget | None, title: str, question: str) -> str:
    """ "save", "discard" or "cancel"."""
    B = QMessageBox.StandardButton
    r = QMessageBox.question(parent, title, question, B.Save | B.Discard | B.Cancel, B.Save)
    return {B.Save: "save", B.Discard: "discard"}.get(r, "cancel")


def restore_or_discard(parent: QWidget | None, title: str, question: str) -> bool:
    """A Restore / Discard question; True for Restore (the default)."""
    B = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Question, title, question, B.Yes | B.No, parent)
    box.button(B.Yes).setText("Restore")
    box.button(B.No).setText("Discard")
    box.setDefaultButton(B.Yes)
    return box.exec() == int(B.Yes.value) or box.clickedButton() is box.button(B.Yes)
