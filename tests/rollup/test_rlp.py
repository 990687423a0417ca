import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup import rlp

items = st.recursive(
    st.binary(max_size=80), lambda children: st.lists(children, max_size=6), max_leaves=30
)


@given(items)
def test_encode_decode_round_trip(item: rlp.RLPItem) -> None:
    assert rlp.decode(rlp.encode(item)) == item


def test_known_vectors() -> None:
    assert rlp.encode(b"dog") == b"\x83dog"
    assert rlp.encode([b"cat", b"dog"]) == b"\xc8\x83cat\x83dog"
    assert rlp.encode(b"") == b"\x80"
    assert rlp.encode([]) == b"\xc0"
    assert rlp.encode(b"\x0f") == b"\x0f"
    assert rlp.encode(b"a" * 56)[:2] == b"\xb8\x38"


@pytest.mark.parametrize(
    "bad",
    [
        b"\x81\x05",  # single byte below 0x80 wrapped in a header
        b"\xb8\x05hello",  # long form for a short string
        b"\x83do",  # truncated
        b"\x83dogs",  # trailing bytes
        b"\xb9\x00\x38" + b"a" * 56,  # length with a leading zero
        b"",
    ],
)
def test_non_canonical_or_truncated_input_is_rejected(bad: bytes) -> None:
    with pytest.raises(rlp.RLPError):
        rlp.decode(bad)


def test_offsets_slice_each_item() -> None:
    data = rlp.encode([b"cat", b"", [b"x"]])
    items, offsets = rlp.decode_list_with_offsets(data)
    assert items == [b"cat", b"", [b"x"]]
    assert [rlp.decode(data[offsets[i] : offsets[i + 1]]) for i in range(3)] == items
