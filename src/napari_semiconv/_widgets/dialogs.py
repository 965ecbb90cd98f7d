"""Small Qt dialogs the docks ask through (kept as attributes of the docks so tests can answer)."""


def ask_text(parent, question: str, current: str) -> str | None:
    from qtpy.QtWidgets import QInputDialog

    text, ok = QInputDialog.getText(parent, "napari-semiconv", question, text=current)
    return text.strip() if ok else None


def ask_save_path(parent, suggested: str) -> str | None:
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, "Export model", suggested, "PyTorch model (*.pt)")
    return path or None


def ask_user(parent, question: str) -> bool:
    """Yes/No dialog (widgets hold it as ``self.confirm`` so scripts can answer)."""
    from qtpy.QtWidgets import QMessageBox

    answer = QMessageBox.question(parent, "napari-semiconv", question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
