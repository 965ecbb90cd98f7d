"""The model chooser the docks share: shipped model, registry model or file; device; rename, delete, export;
bioimage.io export and import (:mod:`..exchange`)."""

from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit, PushButton

from ..errors import SemiconvError
from ..model import load_model, pick_device
from ..models import DEFAULT_MODEL
from ..registry import Registry
from .dialogs import ask_save_path, ask_text, ask_user

SHIPPED = "shipped default"
FROM_FILE = "model file..."


class ModelChooser:
    """Shipped model, a registry model, or a file; and a device. ``load()`` caches the model.

    Its controls (``widgets``) are rows of the dock's own form, so they share its label column: nested
    in a container of their own, their labels made a second column that pushed the controls past a
    dock's width. ``label`` names the model choice; ``loader(path, device)`` loads the chosen file
    (default :func:`..model.load_model`, our models only; the Segment dock's also takes a Mask R-CNN
    baseline file, :func:`..registry.load_model_file`).

    A registry model can be renamed, deleted (after a confirmation) or exported from here; any chosen model
    can be exported as a bioimage.io package, and a package exported by napari-semiconv imported into the
    registry (:mod:`..exchange`). The dialogs are attributes (``ask_name``, ``confirm``, ``ask_path``,
    ``ask_package_path``, ``ask_package``) so scripts and tests can answer.
    """

    def __init__(self, label: str = "model", loader=load_model):
        self.loader = loader
        self.source = ComboBox(label=label, choices=self._choices)
        self.file = FileEdit(label="model file", filter="*.pt", visible=False)
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda", "mps"], value="auto")
        buttons = [PushButton(text=text) for text in ("rename...", "delete...", "save as...")]
        # stacked under the model choice: side by side with the label column they were wider than a dock
        self.manage = Container(widgets=buttons, labels=False, visible=False)
        exchange = [PushButton(text=text, tooltip=tip) for text, tip in (
            ("export...", "write the chosen model as a bioimage.io model package (.zip)"),
            ("import...", "add a bioimage.io package exported by napari-semiconv to your models"))]
        self.exchange = Container(widgets=exchange, layout="horizontal", labels=False, label="bioimage.io")
        for row in (self.manage, self.exchange):
            row.margins = (0, 0, 0, 0)  # aligned with the other rows' fields
        self.widgets = [self.source, self.file, self.manage, self.exchange, self.device]
        self.source.changed.connect(self._on_source)
        for button, action in zip(buttons + exchange, (self.rename, self.delete, self.export, self.export_bioimageio,
                                                       self.import_bioimageio)):
            button.changed.connect(lambda *_, action=action: action())
        parent = self.source.native  # the dialogs' parent: a widget in the dock
        self.ask_name = lambda current: ask_text(parent, f"New name for '{current}':", current)
        self.confirm = lambda question: ask_user(parent, question)
        self.ask_path = lambda name: ask_save_path(parent, f"{name}.pt")
        self.ask_package_path = lambda name: _ask_file(parent, "Export as a bioimage.io package",
                                                       f"{name}.zip", save=True)
        self.ask_package = lambda: _ask_file(parent, "Import a bioimage.io package", "", save=False)
        self._cache: tuple | None = None

    def _on_source(self, value):
        self.file.visible = value == FROM_FILE
        self.manage.visible = value not in (SHIPPED, FROM_FILE)

    def rename(self) -> None:
        """Rename the chosen registry model (asks for the new name)."""
        old = self.source.value
        new = self.ask_name(old)
        if new and new != old:
            self._registry_action(lambda reg: self.refresh(select=reg.rename(old, new).stem))

    def delete(self) -> None:
        """Delete the chosen registry model after a confirmation."""
        name = self.source.value
        if self.confirm(f"Delete the model '{name}' from the registry? This cannot be undone."):
            self._registry_action(lambda reg: (reg.delete(name), self.refresh(select=SHIPPED)))

    def export(self) -> None:
        """Copy the chosen registry model to a path the user picks."""
        name = self.source.value
        dest = self.ask_path(name)
        if dest:
            self._registry_action(lambda reg: reg.export(name, dest))

    def export_bioimageio(self) -> None:
        """Write the chosen model (shipped, registry or file) as a bioimage.io package the user names."""
        from ..exchange import export_bioimageio

        path = self.path()
        dest = self.ask_package_path(path.stem)
        if dest:
            self._registry_action(lambda _reg: export_bioimageio(str(path), dest))

    def import_bioimageio(self) -> None:
        """Add a bioimage.io package exported by napari-semiconv to the registry and choose it."""
        from ..exchange import import_bioimageio

        source = self.ask_package()
        if source:
            self._registry_action(lambda _reg: self.refresh(select=import_bioimageio(source).stem))

    def _registry_action(self, action) -> None:
        from napari.utils.notifications import show_error

        try:
            action(Registry())
        except (SemiconvError, OSError) as exc:
            show_error(str(exc))

    @staticmethod
    def _choices(_widget=None):
        return [SHIPPED] + [f.stem for f in Registry().files()] + [FROM_FILE]

    def refresh(self, select: str | None = None) -> None:
        self.source.reset_choices()
        if select is not None:
            self.source.value = select

    def path(self) -> Path:
        if self.source.value == SHIPPED:
            return DEFAULT_MODEL
        if self.source.value == FROM_FILE:
            return Path(self.file.value)
        return Registry().find(self.source.value) or Path(self.source.value)

    def load(self):
        """The chosen model on the chosen device (loaded once per path/device/mtime)."""
        path, device = self.path(), pick_device(self.device.value)
        key = (str(path), str(device), path.stat().st_mtime if path.is_file() else None)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.loader(path, device))
        return self._cache[1]


def _ask_file(parent, title: str, suggested: str, save: bool) -> str | None:
    """A file dialog for bioimage.io packages (zip, or an rdf.yaml when opening)."""
    from qtpy.QtWidgets import QFileDialog

    if save:
        path, _ = QFileDialog.getSaveFileName(parent, title, suggested, "bioimage.io package (*.zip)")
    else:
        path, _ = QFileDialog.getOpenFileName(parent, title, suggested,
                                              "bioimage.io package (*.zip *.yaml);;All files (*)")
    return path or None
