"""docs/tutorial.ipynb runs top to bottom, its checks can fail, and its links lead somewhere.

The notebook runs in a Jupyter kernel of this interpreter (a kernelspec for sys.executable
written under tmp_path), with tmp_path as its working folder.
"""

import re

import nbformat
import pytest
from conftest import REPO
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TUTORIAL = REPO / "docs" / "tutorial.ipynb"
KERNEL = "reinforce-tf-tests"
# The loss of section 3, as the notebook writes it; the flipped-sign test negates it.
LOSS = "loss = reinforce_loss(Categorical(s @ W).log_prob(action), tf.constant([G]))"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """The name of a kernelspec that runs ipykernel on sys.executable, found first."""
    write_kernel_spec(tmp_path / "jupyter" / "kernels" / KERNEL)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def execute(notebook, kernel_name, folder):
    """Runs every code cell in order; raises CellExecutionError at the first that fails."""
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=300,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()


def cells_through(notebook, heading: str):
    """The notebook's cells up to the last one before the markdown cell starting `heading`."""
    starts = [
        number
        for number, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown" and cell.source.startswith(heading)
    ]
    assert len(starts) == 1, heading
    return notebook.cells[: starts[0]]


@pytest.mark.slow
def test_tutorial_runs_top_to_bottom(tmp_path, kernel):
    # Every cell, CartPole's training run included; the cells' asserts are the checks.
    notebook = nbformat.read(TUTORIAL, as_version=4)
    execute(notebook, kernel, tmp_path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors


def test_a_flipped_loss_sign_fails_the_notebook(tmp_path, kernel):
    # Sections 1–3 with the loss +G ln π instead of −G ln π: minimize then moves W by
    # −α G ∇ln π, and the cell's assert_allclose against α G ∇ln π must stop the notebook.
    notebook = nbformat.read(TUTORIAL, as_version=4)
    notebook.cells = cells_through(notebook, "## 4.")
    (cell,) = [cell for cell in notebook.cells if LOSS in cell.source]
    cell.source = cell.source.replace(LOSS, LOSS.replace("= reinforce_loss", "= -reinforce_loss"))
    with pytest.raises(CellExecutionError) as failure:
        execute(notebook, kernel, tmp_path)
    assert failure.value.ename == "AssertionError"
    assert "Not equal to tolerance" in failure.value.evalue


def test_committed_notebook_holds_one_run_of_its_cells():
    # Committed executed top to bottom in one kernel (counts 1, 2, ...), without errors,
    # every figure a PNG, and small enough to read on a code host.
    notebook = nbformat.read(TUTORIAL, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    figures = [output for output in outputs if output.output_type == "display_data"]
    assert figures and all("image/png" in figure.data for figure in figures)
    assert TUTORIAL.stat().st_size < 1_000_000


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but `-` and `_`
    dropped, spaces as `-` (e.g. "More processes: `--workers`" → "more-processes---workers")."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_lead_to_files_and_headings():
    # Every relative link of the markdown cells names a file of the repo (from docs/) and,
    # after a #, a heading of that file.
    notebook = nbformat.read(TUTORIAL, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    links = re.findall(r"\]\(([^)#]+)(?:#([^)]+))?\)", text)
    assert len(links) >= 5
    for target, anchor in links:
        assert not target.startswith(("http:", "https:")), target
        path = (TUTORIAL.parent / target).resolve()
        assert path.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)
            assert anchor in {github_anchor(heading) for heading in headings}, f"{target}#{anchor}"
