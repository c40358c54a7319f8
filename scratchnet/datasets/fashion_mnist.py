"""Fashion-MNIST: 60,000 training and 10,000 test photos of clothing at 28x28 in ten classes,
as ``keras.datasets.fashion_mnist``. Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress,
4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot."""
from .download import url_source
from .mnist import load_idx_dataset

# MD5 of the .gz files as Zalando Research publishes them
CHECKSUMS = {
    "train-images-idx3-ubyte": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "md5:25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "md5:bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "md5:bb300cfdad3c16e7a12a480ee83cd310",
}
MIRRORS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def sources():
    """Where Fashion-MNIST is fetched from when the cache lacks it, in order."""
    return [("web mirrors (" + ", ".join(MIRRORS) + ")", url_source(MIRRORS))]


def load_data(path=None, verbose=True):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.fashion_mnist:
    from ``path`` (a folder with the four IDX files), or from the cache
    ``data_dir()/fashion_mnist``, filled on first use from the mirrors, each file checked."""
    return load_idx_dataset("Fashion-MNIST", "fashion_mnist", CHECKSUMS, sources(), path, verbose)
