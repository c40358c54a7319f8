"""Reference answers to notebook 4's exercises."""
import numpy as np


def adam_step(w, g, m, v, t, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Step t (from 1) of Adam as Keras takes it: (new w, new m, new v)."""
    m = beta_1 * m + (1 - beta_1) * g                       # moving average of the gradient
    v = beta_2 * v + (1 - beta_2) * g * g                   # ... and of its square
    lr_t = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)   # both averages' bias corrections in one
    return w - lr_t * m / (np.sqrt(v) + epsilon), m, v
