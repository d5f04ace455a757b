from pacskit.net.memory_budget import MemoryBudget


def test_a_reservation_over_the_limit_is_refused_and_reserves_nothing():
    budget = MemoryBudget(100)
    assert budget.reserve(60)
    assert not budget.reserve(41)
    assert budget.in_use == 60
    assert budget.reserve(40)
    budget.release(60)
    assert budget.in_use == 40
    assert budget.reserve(60)


def test_without_a_limit_everything_is_reserved():
    budget = MemoryBudget(0)
    assert budget.reserve(1 << 40)
    assert budget.in_use == 0
