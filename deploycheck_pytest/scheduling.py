"""pytest-xdist scheduling by resource (see deploycheck_pytest.distribute); imported only when xdist runs."""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .distribute import partition, runs_of, split_key


class ResourceScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with a resource as the scope, and every scope sent at the start
    to the worker its hash names (distribute.partition, purpose "worker"), so that each worker
    knows its share before it starts and no two workers fetch one resource's facts. A worker that
    dies leaves its unfinished scopes to the others, as LoadScopeScheduling does."""

    collection: list[str] | None  # set by LoadScopeScheduling (untyped); None until collected

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # LoadScopeScheduling counts a workload's pending tests by walking all of it, and the
        # controller asks after every report: quadratic in the fleet. Counted once, then kept
        # by mark_test_complete; anything else that moves work (a crashed worker) forgets them.
        # Each count keeps its workload alive, so no other dict can take over its id.
        self._pending: dict[int, tuple[dict, int]] = {}

    def _split_scope(self, nodeid: str) -> str:
        return split_key(nodeid, runs_of(self.config))

    def _pending_of(self, workload: dict[str, dict[str, bool]]) -> int:
        counted = self._pending.get(id(workload))
        if counted is None or counted[0] is not workload:
            counted = self._pending[id(workload)] = (workload, super()._pending_of(workload))
        return counted[1]

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        workload = self.assigned_work[node]
        nodeid = self.registered_collections[node][item_index]
        counted = self._pending.get(id(workload))
        if counted is not None and counted[0] is workload and not workload[self._split_scope(nodeid)][nodeid]:
            self._pending[id(workload)] = (workload, counted[1] - 1)
        super().mark_test_complete(node, item_index, duration)

    def add_node(self, node: Any) -> None:
        self._pending.clear()
        super().add_node(node)

    def remove_node(self, node: Any) -> str | None:
        self._pending.clear()
        return super().remove_node(node)

    def _assign_work_unit(self, node: Any) -> None:
        self._pending.clear()
        super()._assign_work_unit(node)

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:  # a replacement worker after a crash: as LoadScopeScheduling
            return super().schedule()
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = list(next(iter(self.registered_collections.values())))
        if not self.collection:
            return
        count = len(self.config.getvalue("tx"))
        by_index = {int(node.gateway.id.removeprefix("gw")): node for node in self.nodes}
        present = [node for _, node in sorted(by_index.items())]
        shares: dict[Any, dict[str, dict[str, bool]]] = {node: {} for node in self.nodes}
        for nodeid in self.collection:
            scope = self._split_scope(nodeid)
            index = partition(scope, count, "worker")
            node = by_index.get(index) or present[index % len(present)]  # its worker never started
            shares[node].setdefault(scope, {})[nodeid] = False
        for node, share in shares.items():
            self.assigned_work[node] = share
            position = {nodeid: number for number, nodeid in enumerate(self.registered_collections[node])}
            indices = sorted(position[nodeid] for unit in share.values() for nodeid in unit)  # collection order
            if indices:
                node.send_runtest_some(indices)
            node.shutdown()  # everything it will run is sent: it stops once that is done
