"""Helpers for tests that drive the training command line (CPU and simulated GPU)."""
import shlex

from scratchnet import train


def interrupt_after(monkeypatch, epochs):
    """Make the run stop like Ctrl-C once ``epochs`` epochs are checkpointed."""
    original = train.Checkpoint.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == epochs:
            raise KeyboardInterrupt
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", on_epoch_end)
    return original


def resume_with_the_printed_command(text):
    """Run the 'Resume with:' command the CLI printed, exactly."""
    command = next(line for line in text.splitlines() if line.startswith("Resume with: "))
    words = shlex.split(command[len("Resume with: "):])
    assert words[:3] == ["python", "-m", "scratchnet.train"]
    return train.main(words[3:])
