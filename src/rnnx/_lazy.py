"""A list whose items are built on first use.

rnnx's forward functions return per-step caches as the course does (a list of
tuples of arrays), but every array in them is a view of one contiguous buffer that
the C++ loop filled. Building T tuples of views costs more than the whole forward
pass at the course's sizes, so :class:`LazyList` builds them only when the list is
first read. It behaves as a list in every way that Python code can see; until it is
read or changed, ``pristine`` is True and the backward functions use the buffers
directly instead of the views.
"""


class LazyList(list):
    """A list of ``length`` items made by ``build()`` on first access.

    Parameters
    ----------
    length : int
        The number of items ``build`` will return.
    build : callable
        Returns the items, a list of exactly ``length`` entries.
    payload : object
        Whatever the producer wants back when the list is handed in again untouched
        (rnnx keeps the buffers behind the views here).
    """

    __slots__ = ("_length", "_build", "payload", "pristine")

    def __init__(self, length, build, payload=None):
        # (list.__init__ is not called: the list starts empty and _fill extends it)
        self._length = length
        self._build = build
        self.payload = payload
        self.pristine = True  # never changed by the user: payload describes the items

    def _fill(self):
        build = self._build
        if build is not None:
            self._build = None
            list.extend(self, build())

    def __len__(self):
        return self._length if self._build is not None else list.__len__(self)

    def __reduce__(self):  # pickle and copy as a plain list
        self._fill()
        return (list, (list(list.__iter__(self)),))

    def __repr__(self):
        self._fill()
        return list.__repr__(self)


def _reading(name):
    method = getattr(list, name)

    def reader(self, *args, **kwargs):
        self._fill()
        return method(self, *args, **kwargs)

    reader.__name__ = name
    return reader


def _writing(name):
    method = getattr(list, name)

    def writer(self, *args, **kwargs):
        self._fill()
        self.pristine = False
        return method(self, *args, **kwargs)

    writer.__name__ = name
    return writer


for _name in ("__getitem__", "__iter__", "__reversed__", "__contains__", "__eq__", "__ne__",
              "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__mul__", "__rmul__",
              "index", "count", "copy"):
    setattr(LazyList, _name, _reading(_name))
for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert",
              "pop", "remove", "reverse", "sort", "clear"):
    setattr(LazyList, _name, _writing(_name))
del _name
LazyList.__hash__ = None
