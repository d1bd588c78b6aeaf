"""JupyterLab driven in Debian's chromium, as a person uses it: open a notebook, Run All, move each widget.

Shared by the browser tests (``tests/browser``) and the latency bench (``tests/bench``). The server runs on a
free port of 127.0.0.1 without a token, over a temporary copy of ``notebooks/`` (beside links to the
``topologies/`` and ``traces/`` its cells read as ``../``), with its own settings, workspaces and runtime
files, so nothing it saves touches the repository or the user's JupyterLab. Playwright drives the system
chromium (``executable_path``): it cannot download its own browser here, and is never asked to.

Widgets are found as ipywidgets draws ``interact``: a box (``.widget-interact``) holding the controls and the
Output widget the function draws into. Changing a control counts as done when that Output shows something
new (its figures' data or its text differ from before), holds a figure, a table or text with every image
loaded, and the kernel is idle again. The time from the input event (seen in the page) to that first frame is
the widget's latency.

Where Playwright is not installed this module still imports (``chromium_missing()`` then says so): Playwright
is imported by the functions that drive the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import nbformat
import nbformat.reader

from labtwin.emulation.programs import CHROMIUM, program

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: What the notebooks read beside themselves (``../topologies/minimal.yaml``, ``../traces/dvr/ovn``).
NOTEBOOK_NEIGHBOURS = ("topologies", "traces")
#: As root, in a closed network: no sandbox, no GPU, and none of the background connections chromium makes
#: by itself (refused here, and slow to be refused).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT_SIZE = (1280, 800)
#: JupyterLab's own settings for the test server: no news, no update checks (no network, no toasts).
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
SERVER_START_S = 60
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RUN_ALL_S = 300
#: What JupyterLab's widget renderer writes where it cannot draw a widget view.
WIDGET_ERROR = "Error displaying widget"
#: The start of an ``interact`` box's text/plain form, drawn in its place when its model cannot be found.
WIDGET_TEXT_FALLBACK = "interactive(children="
WIDGET_CHANGE_S = 60


def chromium_missing() -> Optional[str]:
    """Why the browser tests cannot run here (chromium or Playwright absent), or None."""
    chromium = program(CHROMIUM)
    if chromium.path() is None:
        return (
            f"{CHROMIUM} is not installed (Debian package {chromium.package}, needed for {chromium.needed_for}): "
            "run `make setup` as root"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed: run `make setup` (dev extras)"
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


# --- the server ---------------------------------------------------------------------------------------------


@dataclass
class Lab:
    """A running JupyterLab server over a copy of the notebooks."""

    url: str
    notebooks: Path
    process: subprocess.Popen
    log: Path

    def notebook_url(self, name: str) -> str:
        """The notebook opened alone, in a workspace of its own reset on load (no tabs left from before)."""
        return f"{self.url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset"

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """Every kernel the server runs, shut down (each notebook's, once it has been checked)."""
        kernels = self.api("GET", "kernels")
        assert isinstance(kernels, list)
        for kernel in kernels:
            self.api("DELETE", f"kernels/{kernel['id']}")


@contextmanager
def running_lab(workdir: Path) -> Iterator[Lab]:
    lab = start_lab(workdir)
    try:
        yield lab
    finally:
        stop_lab(lab)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def interact_calls(notebook: Path) -> int:
    """How many ``interact`` boxes the notebook's code makes (``widgets.interact(...)``, ``@widgets.interact``)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return sum(cell.source.count("interact(") for cell in cells if cell.cell_type == "code")


def copy_notebooks(workdir: Path) -> Path:
    """``workdir/notebooks``: a copy of the repository's, with the folders its cells read linked beside it."""
    notebooks = workdir / "notebooks"
    shutil.copytree(NOTEBOOKS, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in NOTEBOOK_NEIGHBOURS:
        (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
    return notebooks


def write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def start_lab(workdir: Path) -> Lab:
    """JupyterLab on a free port of 127.0.0.1, no token, over a copy of the notebooks; up when it answers."""
    notebooks = copy_notebooks(workdir)
    write_lab_settings(workdir / "settings")
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
    }
    argv = [
        sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser",
        "--ip", "127.0.0.1", "--port", str(port), "--port-retries", "0",
        "--IdentityProvider.token=", "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={notebooks}",
        f"--LabApp.user_settings_dir={workdir / 'settings'}",
        f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
        "--LabApp.news_url=None",
    ]  # fmt: skip
    log = workdir / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}", notebooks, process, log)
    wait_until_up(lab)
    return lab


def wait_until_up(lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({lab.process.returncode}) before answering:\n{log_tail(lab)}")
        try:
            lab.api("GET", "status")
            return
        except OSError:
            time.sleep(0.2)
    stop_lab(lab)
    raise RuntimeError(f"JupyterLab did not answer on {lab.url} within {SERVER_START_S} s:\n{log_tail(lab)}")


def log_tail(lab: Lab, lines: int = 30) -> str:
    return "\n".join(lab.log.read_text(errors="replace").splitlines()[-lines:])


def stop_lab(lab: Lab) -> None:
    """The server stopped (it shuts its kernels down); its process group killed if it lingers."""
    if lab.process.poll() is not None:
        return
    lab.process.send_signal(signal.SIGTERM)
    try:
        lab.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGKILL)
        lab.process.wait(timeout=15)


# --- a notebook in the page ---------------------------------------------------------------------------------

#: The code cells' prompts: "[3]:" ran, "[*]:" runs or waits, "[ ]:" not run (or dropped when a cell before failed).
PROMPTS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(prompt => prompt.textContent.trim())"""
#: From here on, notes when a cell is first queued or running ("[*]"): Run All has begun.
ARM_RUN_CLOCK_JS = """() => {
    window.__labtwinRunning = false;
    const notebook = document.querySelector('.jp-Notebook');
    const observer = new MutationObserver(() => {
        if ([...notebook.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(p => p.textContent.includes('*'))) {
            window.__labtwinRunning = true;
            observer.disconnect();
        }
    });
    observer.observe(notebook, {subtree: true, childList: true, characterData: true});
}"""
#: The status bar names the notebook's kernel and says it is idle: started and connected. (The toolbar's execution
#: indicator says "idle" before the kernel even starts: a Run All clicked then runs nothing, or the first cell only.)
KERNEL_READY_JS = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(item => /^(?!No Kernel).+ \\| Idle$/.test(item.textContent.trim()))"""
#: Run All is over once it began and no cell runs or waits any more, with the kernel idle: every cell ran, or one
#: failed and JupyterLab dropped the rest.
RUN_ALL_OVER_JS = f"""() => window.__labtwinRunning && !({PROMPTS_JS})().some(p => p.includes('*'))
    && ({KERNEL_READY_JS})()"""


@dataclass
class NotebookPage:
    """One notebook open in JupyterLab in its own browser page; *file*, the copy the server holds."""

    page: Page
    file: Path

    @property
    def name(self) -> str:
        return self.file.name

    def run_all(self) -> float:
        """Run > Run All Cells, as a person does; the seconds until every cell ran (or one failed)."""
        self.page.evaluate(ARM_RUN_CLOCK_JS)
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        started = time.perf_counter()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        self.page.wait_for_function(RUN_ALL_OVER_JS, timeout=RUN_ALL_S * 1000, polling=100)
        return time.perf_counter() - started

    def errors(self) -> list[str]:
        """Every error output (a traceback), as "cell N: Name: message". Read from the notebook as JupyterLab saves
        it: in the page an error is drawn as stderr text, like a warning (``data-mime-type`` is stderr for both)."""
        self.save()
        cells = self.read_saved().cells
        return [
            f"cell {index}: {output.ename}: {output.evalue}"
            for index, cell in enumerate(cells, 1)
            if cell.cell_type == "code"
            for output in cell.outputs
            if output.output_type == "error"
        ]

    def widgets_without_state(self) -> list[str]:
        """The widget views the saved notebook shows whose model it does not keep: reopened without running, each
        would show "Error displaying widget: model not found". Empty when JupyterLab saves widget state
        (``saveState``: ``make setup`` sets it for the venv's JupyterLab, notebooks/jupyterlab-overrides.json)."""
        self.save()
        notebook = self.read_saved()
        state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        kept = set(state.get("state", {}))
        return [
            output.data[WIDGET_VIEW]["model_id"]
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
            if WIDGET_VIEW in output.get("data", {}) and output.data[WIDGET_VIEW]["model_id"] not in kept
        ]

    def output_area_width(self) -> int:
        """The width in CSS pixels of the notebook's first output area (the one a figure may fill)."""
        return self.page.locator(".jp-Notebook .jp-OutputArea-output").first.evaluate("element => element.clientWidth")

    def undrawn_widgets(self) -> list[str]:
        """What the page shows where a saved widget view could not be drawn: JupyterLab's "Error displaying widget:
        model not found", or, from a notebook saved without its widgets' state, the text fallback the kernel saved
        beside the view ("interactive(children=(...") ."""
        outputs = self.page.locator(".jp-Notebook .jp-OutputArea-output")
        errors = outputs.filter(has_text=WIDGET_ERROR).all_inner_texts()
        fallbacks = [text for text in outputs.all_inner_texts() if text.startswith(WIDGET_TEXT_FALLBACK)]
        return errors + fallbacks

    def read_saved(self, within_s: float = 10) -> nbformat.NotebookNode:
        """The notebook as saved. The server writes a notebook in place (jupyter_server's ``atomic_writing`` keeps a
        backup, it does not rename), so a read can meet a file half written, as one CI-like run here did: read
        again until it parses, for at most *within_s*."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                return nbformat.read(self.file, as_version=4)
            except nbformat.reader.NotJSONError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def save(self) -> None:
        """File > Save Notebook; back once the tab no longer shows unsaved changes."""
        self.page.get_by_role("menuitem", name="File", exact=True).click()
        self.page.get_by_role("menuitem", name=re.compile(r"^Save Notebook\s*(Ctrl\+S)?$")).click()  # name + shortcut
        self.page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=30_000
        )

    def unrun_cells(self) -> int:
        return sum(not prompt[1:-2].isdigit() for prompt in self.page.evaluate(PROMPTS_JS))

    def interacts(self) -> list[Interact]:
        boxes = self.page.locator(".jp-Notebook .widget-interact")
        return [Interact(self.page, boxes.nth(i)) for i in range(boxes.count())]

    def screenshot(self, path: Path, around: Optional[Locator] = None) -> None:
        """The page as it is, scrolled to *around* (the last widget moved) if given."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if around is not None:
            around.evaluate("element => element.scrollIntoView({block: 'start'})")
        self.page.screenshot(path=str(path))


def open_notebook(browser: Browser, lab: Lab, name: str) -> NotebookPage:
    """*name* opened in a new page, its kernel started and idle."""
    width, height = VIEWPORT_SIZE
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    page.wait_for_function(KERNEL_READY_JS, timeout=60_000)
    return NotebookPage(page, lab.notebooks / name)


# --- widgets ------------------------------------------------------------------------------------------------

#: ipywidgets' class for each kind of control this driver knows how to move.
CONTROL_KINDS = {
    "widget-slider": "slider",
    "widget-dropdown": "dropdown",
    "widget-toggle-buttons": "toggle-buttons",
    "widget-checkbox": "checkbox",
}
#: A control's description: its label, or a checkbox's text beside the box (its label is a zero-width space).
LABEL_JS = """control => [...control.querySelectorAll('label, span[title]')]
    .map(label => label.textContent.replace(/\\u200b/g, '').trim()).find(Boolean) ?? ''"""
#: A control's value as the page shows it: a slider's readout, the selected option, the checked box, the active button.
VALUE_JS = """control => control.querySelector('.widget-readout')?.textContent
    ?? control.querySelector('select')?.value
    ?? (control.querySelector('input[type=checkbox]')?.checked)?.toString()
    ?? control.querySelector('button.mod-active')?.textContent
    ?? null"""
#: What the Output shows: its figures (their data) and its text (tables, printed lines), and whether something is
#: there and fully drawn. Not its HTML: JupyterLab changes the Output's style after drawing into it.
OUTPUT_JS = """output => ({
    content: [...output.querySelectorAll('img')].map(img => img.src).join('\\n') + '\\n' + output.textContent,
    drawn: output.querySelector('img, table, pre') !== null
        && [...output.querySelectorAll('img')].every(img => img.complete && img.naturalWidth > 0),
    items: output.querySelectorAll('.jp-OutputArea-child').length,
})"""
#: From here on, the time of the first input event the page sees (a key, a click, a changed select).
ARM_INPUT_CLOCK_JS = """() => {
    window.__labtwinInputAt = null;
    for (const type of ['keydown', 'pointerdown', 'input', 'change']) {
        document.addEventListener(type, () => { window.__labtwinInputAt ??= performance.now(); },
                                  {capture: true, once: true});
    }
}"""
#: True (and the time noted) at the first animation frame where the Output shows something new, fully drawn, with
#: as many outputs as before the change, and the kernel is idle again: the change's every output has arrived (a
#: figure, then the table returned after it: the page may draw the table a frame after it shows the kernel idle).
REDRAWN_JS = f"""([output, before, items]) => {{
    const now = ({OUTPUT_JS})(output);
    if (!now.drawn || now.content === before || now.items < items || !({KERNEL_READY_JS})()) return false;
    window.__labtwinDrawnAt = performance.now();
    return true;
}}"""


class WidgetDidNotRedraw(AssertionError):
    """A control was changed and the output it drives did not show anything new in time."""


@dataclass
class Control:
    """One control of an ``interact`` box: its kind, its label and where it is."""

    kind: str
    label: str
    element: Locator

    def value(self) -> Optional[str]:
        return self.element.evaluate(VALUE_JS)

    def change(self, step: int = 1, to_end: bool = False) -> str:
        """Move it to another value, as a person does (keys on a slider, a click, a choice); what was done. With
        *to_end*, a slider goes to its maximum (the End key). An error if the control itself shows no new value
        (then the driver, not the notebook, is wrong)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        before = self.value()
        if to_end and self.kind != "slider":
            raise ValueError(f"{self.label}: only a slider has an end to go to, this is a {self.kind}")
        done = self._slide_to_end() if to_end else getattr(self, "_change_" + self.kind.replace("-", "_"))(step)
        try:
            self.element.page.wait_for_function(
                f"([control, before]) => ({VALUE_JS})(control) !== before",
                arg=[self.element.element_handle(), before],
                timeout=5_000,
            )
        except PlaywrightTimeout:
            raise AssertionError(f"{done}: the control still shows {before!r}; the driver did not move it") from None
        return done

    def _slide_to_end(self) -> str:
        handle = self.element.locator(".noUi-handle")
        handle.focus()
        handle.press("End")
        return f"End on {self.label}"

    def _change_slider(self, step: int) -> str:
        handle = self.element.locator(".noUi-handle")
        at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute(
            "aria-valuemax" if step > 0 else "aria-valuemin"
        )
        key = "ArrowRight" if (step > 0) != at_end else "ArrowLeft"
        handle.focus()
        handle.press(key)
        return f"{key} on {self.label}"

    def _change_dropdown(self, step: int) -> str:
        select = self.element.locator("select")
        options, current = select.evaluate("select => [[...select.options].map(o => o.text), select.selectedIndex]")
        choice = options[(current + step) % len(options)]
        select.select_option(label=choice)
        return f"{self.label} = {choice}"

    def _change_toggle_buttons(self, step: int) -> str:
        buttons = self.element.locator("button")
        names = buttons.all_inner_texts()
        active = buttons.evaluate_all("all => all.findIndex(b => b.classList.contains('mod-active'))")
        choice = (active + step) % len(names)
        buttons.nth(choice).click()
        return f"{self.label} = {names[choice].strip()}"

    def _change_checkbox(self, step: int) -> str:
        self.element.locator("input[type=checkbox]").click()
        return f"{self.label} toggled"


@dataclass
class Interact:
    """An ``interact`` box: its controls and the Output they redraw."""

    page: Page
    box: Locator

    @property
    def output(self) -> Locator:
        return self.box.locator(":scope > .widget-output")

    def controls(self) -> list[Control]:
        """Every control of the box, in order; an error for a kind this driver cannot move."""
        found = []
        children = self.box.locator(":scope > :not(.widget-output)")
        for i in range(children.count()):
            element = children.nth(i)
            classes = (element.get_attribute("class") or "").split()
            kinds = [CONTROL_KINDS[c] for c in classes if c in CONTROL_KINDS]
            label = element.evaluate(LABEL_JS)
            if not kinds:
                raise AssertionError(
                    f"a control this driver cannot move (classes {' '.join(classes)}), label {label!r}"
                )
            found.append(Control(kinds[0], label, element))
        return found

    def shown(self) -> dict:
        return self.output.evaluate(OUTPUT_JS)

    def change(
        self, control: Control, step: int = 1, timeout_s: float = WIDGET_CHANGE_S, to_end: bool = False
    ) -> float:
        """Change *control* (:meth:`Control.change`); the seconds from the input event to the first frame of the
        redrawn output."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        shown = self.shown()
        self.page.evaluate(ARM_INPUT_CLOCK_JS)
        done = control.change(step, to_end)
        try:
            self.page.wait_for_function(
                REDRAWN_JS,
                arg=[self.output.element_handle(), shown["content"], shown["items"]],
                polling="raf",
                timeout=timeout_s * 1000,
            )
        except PlaywrightTimeout:
            raise WidgetDidNotRedraw(f"{done}: the widget's output showed nothing new within {timeout_s} s") from None
        started, drawn = self.page.evaluate("() => [window.__labtwinInputAt, window.__labtwinDrawnAt]")
        if started is None:
            raise AssertionError(f"{done}: the page saw no input event, so no latency can be measured")
        return (drawn - started) / 1000
