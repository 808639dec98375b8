"""Large, short-lived allocations go back to the system when freed (glibc).

glibc serves an allocation from its heaps unless it is larger than the mmap threshold, which
starts at 128 KiB and rises to the size of every large block freed, up to 32 MiB. After the
first password hash (argon2id's 19 MiB block) is freed, later ones therefore come from the
heaps of the threads that hash, and each heap keeps its high-water mark: a worker that served a
burst of sign-ins held that memory for good. A fixed threshold keeps such blocks in their own
mappings, unmapped when freed; smaller allocations are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
LARGE_BLOCK_BYTES = 1 << 20


def return_large_blocks_to_the_system() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))
