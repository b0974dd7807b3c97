"""pytest-xdist scheduling by resource (see deploycheck_pytest.distribute); imported only when xdist runs."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

from .distribute import partition, resource_key


class ResourceScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with a resource as the scope, and every scope sent at the start
    to the worker its hash names (distribute.partition, purpose "worker"), so that each worker
    knows its share before it starts and no two workers fetch one resource's facts. A worker that
    dies leaves its unfinished scopes to the others, as LoadScopeScheduling does."""

    def _split_scope(self, nodeid: str) -> str:
        return resource_key(nodeid)

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
        shares: dict[object, dict[str, dict[str, bool]]] = {node: {} for node in self.nodes}
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
