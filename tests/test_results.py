"""benchmarks/RESULTS.md is written only by the scripts its sections name, and the README's
figures are the ones in the sections they cite."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import compare_runs  # noqa: E402
import record_run  # noqa: E402
import results  # noqa: E402

RESULTS_TEXT = (ROOT / "benchmarks" / "RESULTS.md").read_text()
README = (ROOT / "README.md").read_text()


def test_every_section_is_sealed_and_unedited():
    begun = re.findall(r"<!-- begin ([\w.-]+) -->", RESULTS_TEXT)
    sealed = results.sections(RESULTS_TEXT)
    assert begun and sorted(begun) == sorted(sealed), "a section without a seal was written by hand"
    edited = [name for name, (_, intact) in sealed.items() if not intact]
    assert not edited, f"sections edited after their script wrote them: {edited}"


def test_every_section_names_the_script_that_wrote_it_and_the_machine():
    for name, (body, _) in results.sections(RESULTS_TEXT).items():
        command = re.search(r"^Command: `python ([^\s`]+)", body, re.M)
        assert command, f"section {name} names no command"
        script = ROOT / command.group(1)
        assert script.is_file() and "write_section(" in script.read_text(), f"{script} does not write sections"
        machine = re.search(r"^Machine: (.*)$", body, re.M).group(1)
        assert re.search(r"\((AVX-512|AVX2|AVX|SSE4\.2|no AVX|ISA unknown)\)", machine), machine


def test_an_edited_section_no_longer_matches_its_seal(tmp_path):
    path = tmp_path / "RESULTS.md"
    results.write_section("demo", "## Demo\n\n**Accuracy: 0.8580**\n", results=path)
    assert results.sections(path.read_text())["demo"][1]
    path.write_text(path.read_text().replace("0.8580", "0.8680"))
    assert not results.sections(path.read_text())["demo"][1]
    results.write_section("demo", "## Demo\n\n**Accuracy: 0.8100**\n", results=path)   # rewritten: sealed again
    assert list(results.sections(path.read_text())) == ["demo"] and results.sections(path.read_text())["demo"][1]


def fake_record(schedule):
    history = {"loss": [0.6, 0.5], "accuracy": [0.6, 0.7], "val_loss": [0.55, 0.5], "val_accuracy": [0.7, 0.75]}
    return {"settings": {"experiment": "catsdogs", "epochs": 2, "batch_size": 32, "lr": 3e-4, "image_size": 128,
                         "augment": True, "seed": 0, "data": "/d.tar", "backend": "cpu", "workers": 2,
                         "threads": None, "limit": None},
            "history": history, "epoch_seconds": [300.0, 310.0], "seconds": 610.0, "schedule": schedule,
            "accuracy": 0.751}


def test_a_recorded_run_reports_the_last_epoch_and_says_when_its_schedule_changed():
    text = record_run.body(fake_record([2]))
    assert "**Validation accuracy after 2 epochs: 0.7510**" in text and "fixed when the run started" in text
    assert "--epochs 2 --batch-size" not in text and "--augment" in text and "| 2 | 0.5000 |" in text
    changed = record_run.body(fake_record([8, 2]))
    assert "The schedule changed while the run went on**: epochs 8 -> 2" in changed


def test_runs_compared_at_equal_time_use_the_last_epoch_each_finished_within_the_shorter_run(tmp_path):
    import json
    short, long = fake_record([2]), fake_record([3])
    long["history"] = {k: v + [v[-1] + 0.1] for k, v in long["history"].items()}
    long["history"]["val_accuracy"] = [0.8, 0.85, 0.9]
    long["epoch_seconds"] = [200.0, 300.0, 400.0]                 # 3.3, 8.3 and 15 minutes; the short run: 10.2
    runs = []
    for name, record in (("short", short), ("long", long)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text(json.dumps(record))
        runs.append(compare_runs.load(tmp_path / name))
    text = compare_runs.body(runs)
    assert "here 10.2 minutes" in text
    assert "`short`" in text and "**0.7500** after 2 epochs in 10.2 minutes; at T: **0.7500** (epoch 2)" in text
    assert "**0.9000** after 3 epochs in 15.0 minutes; at T: **0.8500** (epoch 2)" in text
    assert "| 3 | - | - | 15.0 | 0.9000 |" in text


# ----- the README's figures ----------------------------------------------------------------------
# a figure: a number with a thousands comma or a decimal point, or any number with a unit
FIGURE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+(?=%|x(?![\d])| ms\b| s\b| min\b))"
                    r"(%|x(?![\d])| ms\b| s\b| min\b)?")


def figures_section():
    return README[README.index("## Figures"):]


def cited_blocks():
    """(block of text, [section names]) for each paragraph or table of the README's Figures part."""
    blocks = [b for b in re.split(r"\n\s*\n", figures_section()) if b.strip()]
    previous = []
    for block in blocks:
        groups = re.findall(r"\bsections?\s+((?:`[\w.-]+`(?:,?\s+(?:and\s+)?)?)+)", block)
        names = sorted({name for group in groups for name in re.findall(r"`([\w.-]+)`", group)})
        if not names and block.lstrip().startswith("|"):   # a table: the paragraph above names its section
            names = previous
        previous = names
        yield block, names


def test_readme_figures_cite_sections_that_exist():
    sealed = results.sections(RESULTS_TEXT)
    cited = [names for block, names in cited_blocks() if FIGURE.search(re.sub(r"`[^`]*`", "", block))]
    assert cited and all(names for names in cited), "a figure in the README cites no RESULTS section"
    for names in cited:
        assert set(names) <= set(sealed), f"the README cites missing sections {set(names) - set(sealed)}"


@pytest.mark.parametrize("block_index", range(len(list(cited_blocks()))))
def test_each_readme_figure_is_in_a_section_it_cites(block_index):
    block, names = list(cited_blocks())[block_index]
    sources = "\n".join(results.sections(RESULTS_TEXT)[n][0] for n in names if n in results.sections(RESULTS_TEXT))
    prose = re.sub(r"`[^`]*`", "", block)   # commands and names, not figures
    for number, unit in FIGURE.findall(prose):
        forms = {number + unit, number + unit.strip(), f"| {number} |"} if unit else {number}
        if unit == "%":
            forms.add(f"{float(number) / 100:.4f}")
        assert any(f in sources for f in forms), f"README figure {number}{unit} is not in sections {names}"
