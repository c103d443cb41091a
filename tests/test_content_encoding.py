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


def test_the_byte_cap_holds_over_all_members():
    member = gzip.compress(b"\0" * 600_000)
    with pytest.raises(DecodeRefused, match="too large after decompression"):
        undo_content_encoding(member * 2, "gzip", 1_000_000)
