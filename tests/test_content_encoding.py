"""Bodies a server compressed although asked for identity: inflated as browsers do, never past
the byte cap."""
import gzip
import zlib

import pytest

from imagegallery.decode import DecodeRefused, undo_content_encoding

PICTURE = bytes(range(256)) * 64


def test_a_gzip_body_of_several_members_is_inflated_whole():
    body = gzip.compress(PICTURE[:5000]) + gzip.compress(PICTURE[5000:])
    assert undo_content_encoding(body, "gzip", 1 << 20) == PICTURE


def test_bytes_after_a_gzip_body_that_are_no_member_are_ignored():
    assert undo_content_encoding(gzip.compress(PICTURE) + b"\0\0junk", "gzip", 1 << 20) == PICTURE


@pytest.mark.parametrize("compress", [zlib.compress,
                                      lambda data: zlib.compress(data)[2:-4]],  # raw deflate
                         ids=["zlib", "raw"])
def test_deflate_is_taken_in_the_zlib_format_and_raw(compress):
    assert undo_content_encoding(compress(PICTURE), "deflate", 1 << 20) == PICTURE


def test_a_list_of_codings_is_undone_last_first_and_identity_in_it_means_nothing():
    assert undo_content_encoding(gzip.compress(PICTURE), "gzip, identity", 1 << 20) == PICTURE
    twice = gzip.compress(zlib.compress(PICTURE))  # deflate first, then gzip
    assert undo_content_encoding(twice, "deflate, GZIP", 1 << 20) == PICTURE
    with pytest.raises(DecodeRefused, match="body in over 3 content encodings"):
        undo_content_encoding(twice, "gzip, gzip, gzip, gzip", 1 << 20)


def test_the_byte_cap_holds_over_all_members():
    member = gzip.compress(b"\0" * 600_000)
    with pytest.raises(DecodeRefused, match="too large after decompression"):
        undo_content_encoding(member * 2, "gzip", 1_000_000)


def test_a_flood_of_empty_gzip_members_is_refused_without_a_long_wait():
    # 20 bytes each: 4 MB of them took 10 s, holding the GIL, each member copying the rest.
    from imagegallery.decode import MAX_GZIP_MEMBERS

    flood = gzip.compress(b"", mtime=0) * (4 * 1024 * 1024 // 20)
    with pytest.raises(DecodeRefused, match=f"gzip body of over {MAX_GZIP_MEMBERS} members"):
        undo_content_encoding(flood, "gzip", 50 << 20)


def test_a_member_followed_by_garbage_that_looks_like_one_keeps_what_was_inflated():
    body = gzip.compress(PICTURE) + b"\x1f\x8b\x99garbage"
    assert undo_content_encoding(body, "gzip", 1 << 20) == PICTURE


def test_a_later_member_that_fails_its_check_adds_none_of_its_bytes():
    # What it inflated before its CRC failed depended on where the 64 KB windows fell.
    import random

    bad = bytearray(gzip.compress(random.Random(7).randbytes(300_000)))  # over four windows
    bad[-8] ^= 0xFF  # its CRC
    assert undo_content_encoding(gzip.compress(b"head") + bytes(bad), "gzip", 1 << 20) == b"head"
