"""import scratchnet stays light: no JIT, no CuPy, no matplotlib at import time."""
import subprocess
import sys


def test_import_loads_no_jit_compiler_or_gpu_library():
    code = ("import sys, scratchnet, scratchnet.layers, scratchnet.models;"
            "print(sorted(m for m in ('numba', 'cupy', 'matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_top_level_names_mirror_keras():
    import scratchnet
    from scratchnet import layers, losses, models, optimizers
    assert scratchnet.Sequential is models.Sequential
    assert {"Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout"} <= set(dir(layers))
    assert callable(losses.binary_crossentropy) and optimizers.RMSprop(lr=1e-4).learning_rate == 1e-4


def test_every_package_of_the_source_tree_is_installed():
    # pyproject.toml lists packages by hand: one left out installs a scratchnet that cannot import it.
    import tomllib
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "scratchnet").rglob("__init__.py")}
    assert "scratchnet.kernels" in found
    assert found == listed, f"missing from pyproject.toml: {found - listed}; not in the source tree: {listed - found}"


def test_modules_moved_into_saving_keep_their_old_import_paths():
    from scratchnet import onnx_export, saving, serialization
    from scratchnet.saving import architecture
    assert serialization.model_to_spec is architecture.model_to_spec
    assert serialization.ArchitectureError is architecture.ArchitectureError
    assert onnx_export.export_model is saving.onnx_export.export_model
    assert onnx_export.EXPORTERS is saving.onnx_layers.EXPORTERS
    assert onnx_export.OnnxExportError is saving.onnx_builder.OnnxExportError


def test_saving_finds_models_through_the_registry_and_only_scratchnet_classes():
    from scratchnet import layers, models, registry
    assert registry.get("Sequential") is models.Sequential and registry.get("Dense") is layers.Dense

    class Dense(layers.Dense):    # a user's class of the same name does not replace scratchnet's
        pass
    assert registry.get("Dense") is layers.Dense


def test_modules_moved_into_training_and_execute_keep_their_old_import_paths():
    import scratchnet
    from scratchnet import callbacks, data_adapter, execute, graph, trainer, training
    assert callbacks is training.callbacks and data_adapter is training.data_adapter
    assert trainer.Trainer is training.Trainer and trainer.TrainingDiverged is scratchnet.TrainingDiverged
    assert graph.run_forward is execute.run_forward and graph.run_backward is execute.run_backward
    assert scratchnet.callbacks.ModelCheckpoint is training.callbacks.ModelCheckpoint
