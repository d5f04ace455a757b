from pacskit.net.connection_limits import ConnectionLimits


def test_connections_are_refused_over_the_total_and_per_address_limits():
    limits = ConnectionLimits(max_connections=3, per_address=2, max_associations=1)
    assert limits.open("10.0.0.1") is None
    assert limits.open("10.0.0.1") is None
    assert "max_connections_per_address" in (limits.open("10.0.0.1") or "")
    assert limits.open("10.0.0.2") is None
    assert "max_connections" in (limits.open("10.0.0.3") or "")
    limits.close("10.0.0.1")
    assert limits.open("10.0.0.3") is None
    assert limits.connections == 3


def test_associations_are_counted_apart_from_connections():
    limits = ConnectionLimits(max_connections=10, per_address=10, max_associations=1)
    assert limits.begin_association()
    assert not limits.begin_association()
    limits.end_association()
    assert limits.begin_association()
