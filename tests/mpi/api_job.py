"""The distributed API for training loops of one's own, run under mpiexec by
tests/test_distributed.py: each rank checks what it got and rank 0 writes OUT (JSON).

    mpiexec -n 2 python api_job.py OUT
"""
import json
import sys

import numpy as np

import scratchnet
from scratchnet import distributed, layers, models, optimizers


def main():
    communicator = distributed.init()
    rank, size = distributed.rank(), distributed.size()
    found = {"rank": rank, "size": size, "local_rank": distributed.local_rank(),
             "same_init": distributed.init() is communicator}
    # apply_gradients averages the ranks' gradients first, as Horovod's DistributedOptimizer
    optimizer = distributed.DistributedOptimizer(optimizers.SGD(1.0))
    weight = np.zeros(3, np.float32)
    optimizer.apply_gradients([weight], [np.full(3, rank + 1, np.float32)])
    found["sgd_step"] = weight.tolist()                    # -(1 + 2) / 2 on every rank
    # train_on_batch with it: the same update on every rank, from different batches
    scratchnet.set_random_seed(rank)                       # different initial weights per rank...
    model = models.Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=distributed.DistributedOptimizer(optimizers.Adam(0.1)),
                  loss="sparse_categorical_crossentropy")
    distributed.broadcast_model(model)                     # ...until rank 0's are broadcast
    x = np.random.default_rng(rank).random((5, 4), dtype=np.float32)
    model.train_on_batch(x, np.array([0, 1, 0, 1, rank]))
    weights = np.concatenate([w.ravel() for w in model.get_weights()])
    everyone = communicator.gather_json(weights.tolist())
    found["train_on_batch_alike"] = all(np.array_equal(everyone[0], w) for w in everyone)
    found["counts"] = communicator.counts(rank + 3)
    found["broadcast"] = communicator.broadcast_json({"from": rank, "pi": 3.25}, root=size - 1)
    if rank == 0:
        with open(sys.argv[1], "w") as f:
            json.dump(found, f)


if __name__ == "__main__":
    main()
