"""EndpointPool: the choice of a server per request, without a network (a fake clock)."""

from __future__ import annotations

import pytest

from vibe_jet_tagging.servers.pool import EndpointPool

URLS = ["http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fewest_in_flight_then_fewest_sent() -> None:
    pool = EndpointPool(URLS)
    first = [pool.acquire() for _ in range(3)]
    assert [e.base_url for e in first] == URLS  # one each before any gets a second
    pool.release(first[1], ok=True)
    assert pool.acquire() is first[1]  # b has nothing in flight now
    assert [e["in_flight"] for e in pool.stats()] == [1, 1, 1]


def test_even_shares_over_many_requests() -> None:
    pool = EndpointPool(URLS)
    for _ in range(300):
        pool.release(pool.acquire(), ok=True)
    assert [e["sent"] for e in pool.stats()] == [100, 100, 100]


def test_a_failed_server_is_set_aside_then_tried_again() -> None:
    clock = Clock()
    pool = EndpointPool(URLS[:2], cooldown=30, clock=clock)
    a = pool.acquire()
    pool.release(a, ok=False)
    assert all(pool.acquire().base_url == URLS[1] for _ in range(5))  # a is set aside
    clock.now += 31
    assert pool.acquire() is a  # back, and it has nothing in flight
    pool.release(a, ok=True)
    assert pool.stats()[0] == {
        "base_url": URLS[0], "sent": 2, "ok": 1, "failed": 1, "in_flight": 0, "set_aside": None
    }  # fmt: skip


def test_when_all_are_set_aside_the_one_back_soonest_is_used() -> None:
    clock = Clock()
    pool = EndpointPool(URLS[:2], cooldown=30, clock=clock)
    a, b = pool.acquire(), pool.acquire()
    pool.release(b, ok=False)
    clock.now += 5
    pool.release(a, ok=False)
    assert pool.acquire() is b


def test_a_cancelled_request_says_nothing_about_the_server() -> None:
    pool = EndpointPool(URLS[:2])
    a = pool.acquire()
    pool.release(a, ok=None)
    assert pool.stats()[0] == {
        "base_url": URLS[0], "sent": 1, "ok": 0, "failed": 0, "in_flight": 0, "set_aside": None
    }  # fmt: skip
    assert a.down_until == 0  # not set aside


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ([], "at least one"),
        (["http://a/v1", "http://a/v1/"], "twice"),
        (["http://a/v1", "http://b/api"], "one path"),
    ],
)
def test_bad_pools(urls, message) -> None:
    with pytest.raises(ValueError, match=message):
        EndpointPool(urls)


def test_servers_with_other_weights_are_refused_for_good(monkeypatch) -> None:
    """Answers of other weights are not one model's: refused, and never retried."""
    from vibe_jet_tagging.errors import ServersDisagreeError
    from vibe_jet_tagging.servers import info as server_info
    from vibe_jet_tagging.servers.info import ModelCard, ServerInfo
    from vibe_jet_tagging.tagging import failures as tagger_errors

    roots = {"http://a:8000/v1": "org/model-v1", "http://b:8000/v1": "org/model-v2"}

    def fetch(url, key=None, **kwargs):
        return ServerInfo(url, (ModelCard("m", root=roots[url], owned_by="vllm"),), "0.32.0")

    monkeypatch.setattr(server_info, "fetch_server_info", fetch)
    with pytest.raises(ServersDisagreeError, match="do not serve the same 'm'") as info:
        server_info.fetch_pool_info(list(roots), None, "m")
    assert "org/model-v1" in str(info.value) and "org/model-v2" in str(info.value)
    assert not tagger_errors.server_info_error(info.value).transient
