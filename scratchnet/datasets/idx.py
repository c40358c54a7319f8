"""Reader for the IDX format of the original MNIST files (optionally gzipped)."""
import gzip
import struct

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data, name="<bytes>"):
    """Array from the bytes of one IDX file; a clear error if they are not one."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name} is not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _DTYPES:
        raise ValueError(f"{name}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name} is truncated: {len(data)} bytes, header alone needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[type_code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{name}: expected {expected} bytes for an array of shape {shape}, "
                         f"got {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path):
    """Array stored in the IDX file at ``path`` (.gz files are decompressed)."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        try:
            data = f.read()
        except (OSError, EOFError) as error:
            raise ValueError(f"{path} could not be read: {error}") from error
    return parse_idx(data, path)
