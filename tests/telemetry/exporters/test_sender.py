import threading

from telemetry.exporters.sender import SenderState


def test_only_the_first_shutdown_flushes_and_sets_abort_and_stopping_after_closing() -> None:
    state = SenderState()
    seen: list[tuple[float, bool, bool, bool]] = []

    def flush(timeout: float) -> bool:
        seen.append((timeout, state.closed, state.stopping, state.abort.is_set()))
        return True

    assert state.begin_shutdown(flush, 2.5)
    assert not state.begin_shutdown(flush, 2.5)
    assert seen == [(2.5, True, False, False)]  # flushed once: closed, the worker not yet told to stop
    assert state.stopping and state.abort.is_set()


def test_waiting_until_idle_fails_at_once_when_the_worker_is_dead_and_counts_no_flusher_after() -> None:
    state = SenderState()
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    assert not state.wait_until_idle(lambda: True, worker, 60.0)
    assert state.wait_until_idle(lambda: False, worker, 60.0)
    assert state.flushers == 0


def test_a_waiting_flush_lets_the_worker_take_a_partial_batch_and_closed_and_empty_ends_it() -> None:
    state = SenderState()
    queued = [3]
    taken: list[bool] = []

    def work() -> None:
        with state.cond:
            taken.append(state.wait_for_batch(lambda: queued[0], 100, 3600.0))  # would linger an hour for 100
            state.cond.notify_all()

    worker = threading.Thread(target=work)
    worker.start()
    assert state.wait_until_idle(lambda: not taken, worker, 60.0)
    worker.join()
    assert taken == [True]
    queued[0] = 0
    state.closed = True
    with state.cond:
        assert not state.wait_for_batch(lambda: queued[0], 100, 3600.0)
