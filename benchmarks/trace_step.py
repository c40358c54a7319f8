"""How much of scratchnet one training step runs through: the files and the distinct source
lines of the package that execute during one step of the MNIST reference model (after a
warm-up step), for the step itself and for a one-batch fit around it.

    python benchmarks/trace_step.py [--source DIR]    # DIR: another checkout to measure

It prints one line per measurement and a table of the files; it writes nothing."""
import argparse
import os
import sys


def measure(run, package_dir):
    """{file: set of line numbers} of the package's code executed while ``run()`` runs."""
    seen = {}

    def tracer(frame, event, arg):
        path = frame.f_code.co_filename
        if not path.startswith(package_dir):
            return None
        if event in ("call", "line"):
            seen.setdefault(path, set()).add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(os.path.dirname(__file__), ".."))
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.source))
    import numpy as np

    import scratchnet
    from scratchnet import layers, models
    package_dir = os.path.dirname(os.path.realpath(scratchnet.__file__))
    kernels_dir = os.path.realpath(os.path.join(package_dir, "kernels"))
    scratchnet.set_random_seed(0)
    model = models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                               layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
                               layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
                               layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)      # compiles the kernels
    if hasattr(model, "train_step"):
        from scratchnet.training import inputs
        data = (inputs.to_device(model, x), inputs.to_device(model, inputs.prepare_targets(model, y, 32)))
        step = lambda: model.train_step(data)      # noqa: E731
    else:
        yb = model._prepare_targets(y, 32)
        step = lambda: model._train_step(x, yb)    # noqa: E731
    for name, run in (("one train step", step),
                      ("fit on one batch", lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0))):
        seen = measure(run, os.path.dirname(package_dir))
        engine = {p: lines for p, lines in seen.items() if p.startswith(package_dir)}
        kernels = {p: lines for p, lines in engine.items() if os.path.realpath(p).startswith(kernels_dir)}
        print(f"{name}: {len(engine)} files, {sum(map(len, engine.values()))} distinct lines "
              f"({len(kernels)} kernel files, {sum(map(len, kernels.values()))} kernel lines)")
        for path in sorted(engine):
            print(f"    {os.path.relpath(path, os.path.dirname(package_dir)):48s} {len(engine[path]):5d}")


if __name__ == "__main__":
    main()
