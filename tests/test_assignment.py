"""The compiled assignment (edge.assignment) returns what scipy's linear_sum_assignment returns,
pair for pair: the fusion's links depend on which of several equal-cost assignments is taken."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment as scipy_lsa

from edge.assignment import linear_sum_assignment
from edge.pairing import INFEASIBLE

shapes = st.tuples(st.integers(0, 9), st.integers(0, 9))


@settings(max_examples=400, deadline=None)
@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=st.integers(0, 3).map(float))))
def test_ties_are_broken_as_scipy_breaks_them(cost):
    """Small integer costs: many assignments of equal cost, the one scipy picks."""
    rows, cols = linear_sum_assignment(cost)
    ref_rows, ref_cols = scipy_lsa(cost)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)


@settings(max_examples=300, deadline=None)
@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=st.one_of(
    st.floats(-50, 50, allow_nan=False), st.just(INFEASIBLE)))))
def test_real_costs_and_the_fusions_infeasible_pairs(cost):
    """Real-valued costs with the fusion's INFEASIBLE marks (pairs out of a gate), any shape."""
    rows, cols = linear_sum_assignment(cost)
    ref_rows, ref_cols = scipy_lsa(cost)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)


@pytest.mark.parametrize("shape", [(50, 60), (60, 50), (40, 40)])
def test_a_frame_sized_problem(shape):
    """A global frame of the fusion bench: 50 tracks, tens of targets, most pairs out of the gates."""
    rng = np.random.default_rng(sum(shape))
    cost = np.where(rng.random(shape) < 0.9, INFEASIBLE, rng.gamma(2.0, 2.0, shape))
    rows, cols = linear_sum_assignment(cost)
    ref_rows, ref_cols = scipy_lsa(cost)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)
    assert len(rows) == min(shape)


def test_no_feasible_assignment_gives_no_pairs():
    """scipy raises on an infinite-only row; the fusion never passes one (it marks INFEASIBLE),
    and the compiled one returns no pairs rather than raise inside the frame's kernel."""
    cost = np.array([[np.inf, np.inf], [1.0, 2.0]])
    with pytest.raises(ValueError):
        scipy_lsa(cost)
    rows, cols = linear_sum_assignment(cost)
    assert len(rows) == len(cols) == 0
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert len(rows) == len(cols) == 0
