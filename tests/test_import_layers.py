"""densedet's imports go one way: no module imports, directly or in a circle, one that depends on
it, and no room (top-level package) imports a room of a higher layer. Function-level (lazy)
imports count too: they are dependencies all the same."""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(ROOT, 'densedet')

# Lowest first. A room may import rooms of lower layers only (and itself); rooms of one layer do
# not import each other. densedet/__init__.py, which imports every room to register them, is above all.
LAYERS = [
    ('errors', 'registry'),
    ('fileio', 'structures', 'ops'),
    ('transforms', ),
    ('datasets', ),
    ('preparation', 'evaluation'),
    ('engine', ),
    ('models', ),
    ('compat', ),
    ('apis', ),
]


def _module_name(path):
    rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def import_graph():
    """``{module: {imported densedet modules}}`` for every module of the package."""
    graph = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            module = _module_name(path)
            package = module if name == '__init__.py' else module.rsplit('.', 1)[0]
            targets = set()
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                        base = '.'.join(parts + ([node.module] if node.module else []))
                    else:
                        base = node.module or ''
                    if base.split('.')[0] == 'densedet':
                        # `from pkg import submodule` imports the submodule
                        subs = [f'{base}.{a.name}' for a in node.names]
                        targets.update(s for s in subs if osp.exists(_path_of(s)) or osp.isdir(_path_of(s)[:-3]))
                        targets.add(base)
                elif isinstance(node, ast.Import):
                    targets.update(a.name for a in node.names if a.name.split('.')[0] == 'densedet')
            graph[module] = targets - {module}
    return graph


def _path_of(module):
    return osp.join(ROOT, *module.split('.')) + '.py'


def _room(module):
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def test_layers_name_every_room():
    rooms = {_room(m) for m in import_graph()} - {None}
    listed = {room for layer in LAYERS for room in layer}
    assert rooms == listed, f'rooms without a layer: {sorted(rooms - listed)}; layers without a room: ' \
                            f'{sorted(listed - rooms)}'


def test_no_room_imports_a_higher_or_sibling_room():
    rank = {room: i for i, layer in enumerate(LAYERS) for room in layer}
    wrong = sorted(f'{module} imports {target}' for module, targets in import_graph().items()
                   for target in targets
                   if _room(module) and _room(target) and _room(module) != _room(target)
                   and rank[_room(target)] >= rank[_room(module)])
    assert not wrong, '\n'.join(wrong)


def test_no_import_cycle():
    graph = import_graph()
    state, stack, cycles = {}, [], []

    def visit(module):
        state[module] = 'open'
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 'open':
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state and module != 'densedet':  # the root imports everything, by design
            visit(module)
    assert not cycles, '\n'.join(' -> '.join(c) for c in cycles)


def test_the_checks_see_an_upward_import_and_a_circle(monkeypatch):
    # a planted import of datasets from fileio is upward and closes a circle: both checks fail
    import sys
    graph = import_graph()
    assert 'densedet.fileio' in graph['densedet.datasets.volume']
    graph['densedet.fileio.plans'] = graph['densedet.fileio.plans'] | {'densedet.datasets.volume'}
    monkeypatch.setattr(sys.modules[__name__], 'import_graph', lambda: graph)
    for check in (test_no_room_imports_a_higher_or_sibling_room, test_no_import_cycle):
        try:
            check()
        except AssertionError as error:
            assert 'densedet.fileio.plans' in str(error)
        else:
            raise AssertionError(f'{check.__name__} missed the planted import')


def test_registries_are_reached_through_densedet_registry():
    # scope helpers (DefaultScope, init_default_scope) are not registries
    allowed = {'DefaultScope', 'init_default_scope'}
    wrong = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            path = osp.join(folder, name)
            if not name.endswith('.py') or path == osp.join(PACKAGE, 'registry.py'):
                continue
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, ast.ImportFrom) and node.module in ('mmengine.registry', 'mmseg.registry',
                                                                        'mmdet.registry'):
                    names = {a.name for a in node.names} - allowed
                    if names:
                        wrong.append(f'{osp.relpath(path, ROOT)}: {node.module} {sorted(names)}')
    assert not wrong, '\n'.join(wrong)
