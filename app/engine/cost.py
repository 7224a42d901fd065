"""Static query cost, in the style the big commerce GraphQL APIs publish.

Rules (the README's "Limits and rate limits" section is the public version):

- a scalar or enum field costs 0, `__typename` too;
- an object field (object, interface or union type) costs 1, plus its selection;
- a connection field (its type's name ends with "Connection") costs 2 plus page size x
  the cost of one item: `edges` are the page (an edge itself is free, its `node` is an
  object, 1), other fields of the connection (`pageInfo` 1, `totalCount` below) count once.
  The page size is `first` or `last` (literal or variable, the larger when both are
  given), else the default page size, and never more than the maximum page size (a
  larger one is refused by the field itself with BAD_USER_INPUT);
- a connection's `totalCount` costs the default page size (20 by default): its COUNT reads
  every matching row whatever `first` says; a count that is stored, not counted, declares
  its cost in its Strawberry field's metadata (`metadata={"cost": 0}`);
- a plain list of objects costs 1, like an object, plus PLAIN_LIST_SIZE x the cost of one
  item's selection (an item's scalars are free, its objects are not): lists that can
  grow are connections, plain lists are small, fixed ones loaded in one batch (a
  product's variants and images, a category's children), 3 being their typical size. It
  is an estimate, not a bound: a longer list is charged its excess after execution. A
  list whose objects are named by a list argument (`nodes(ids: [...])`) costs 1 per
  object named, plus their selections;
- a mutation root field costs 10 plus its selection;
- `__schema` and `__type` cost 1 in all: the schema is served from memory;
- fragments on different concrete types of an abstract field cost the most expensive
  of them; fields selected twice under one response name are merged, as execution does;
  `@skip`/`@include` with a literal condition are honoured, with a variable assumed included.

The requested cost is computed before execution from the cached plan and the request's
variables (page sizes are the only per-request part); the actual cost is computed from
the result: connections and lists count the items they returned, and a null object its
own cost only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)

from app.engine.compat import field_definition
from app.engine.selections import collect, fragments_of, literally_included

OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10
INTROSPECTION_COST = 1
PLAIN_LIST_SIZE = 3
# The one costed scalar: a connection's count, charged as a default page (see above).
TOTAL_COUNT_FIELD = "totalCount"
COST_METADATA_KEY = "cost"
# A plan is built from the document with fragments inlined. A document that inlines to
# more fields than this is refused: fragments spread inside fragments grow exponentially.
MAX_EXPANDED_FIELDS = 10_000


class QueryTooComplex(Exception):
    """The operation cannot be costed or is over a limit."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """The page sizes that costs assume."""

    default_page_size: int
    max_page_size: int


@dataclass(frozen=True, slots=True)
class Size:
    """How many items a field returns: a literal, or read from variables per request."""

    literal: int | None = None
    variables: tuple[str, ...] = ()  # variables naming the size; the largest set one wins
    defaults: tuple[int | None, ...] = ()  # each variable's default in the operation
    list_length: bool = False  # the size is the length of a list argument
    fallback: int = PLAIN_LIST_SIZE

    @property
    def is_static(self) -> bool:
        """Whether the size does not depend on variables."""
        return not self.variables

    def resolve(self, variables: Mapping[str, Any] | None, maximum: int) -> int:
        """The size for these variables, within 0..maximum."""
        size = self.literal
        for name, default in zip(self.variables, self.defaults, strict=True):
            value = variables.get(name, default) if variables else default
            value = _size_of(value, self.list_length)
            if value is not None:
                size = value if size is None else max(size, value)
        if size is None:
            size = self.fallback
        return min(max(size, 0), maximum)


def _size_of(value: Any, list_length: bool) -> int | None:
    if list_length:
        return len(value) if isinstance(value, list) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


@dataclass(slots=True)
class FieldCost:
    """One response key: `base` + size x (`item` + the selection's cost)."""

    base: int
    size: Size | None = None  # None: a single object
    item: int = 0
    selection: SelectionCost | None = None


@dataclass(slots=True)
class SelectionCost:
    """Fields that can cost something (no leaves), and those only some concrete types have."""

    fields: dict[str, FieldCost] = field(default_factory=dict)
    by_type: dict[str, dict[str, FieldCost]] = field(default_factory=dict)


@dataclass(slots=True)
class CostPlan:
    """The cost structure of one operation, built once per document."""

    selection: SelectionCost
    model: CostModel
    static_cost: int | None  # the requested cost when no size depends on variables

    def requested(self, variables: Mapping[str, Any] | None) -> int:
        """The cost this operation may reach, before it runs."""
        if self.static_cost is not None:
            return self.static_cost
        return _selection_requested(self.selection, variables, self.model)

    def actual(self, data: Mapping[str, Any] | None) -> int:
        """The cost of what the operation returned."""
        if data is None:
            return 0
        return _selection_actual(self.selection, data)


def _selection_requested(
    selection: SelectionCost, variables: Mapping[str, Any] | None, model: CostModel
) -> int:
    total = sum(_field_requested(cost, variables, model) for cost in selection.fields.values())
    if selection.by_type:
        total += max(
            sum(_field_requested(cost, variables, model) for cost in fields.values())
            for fields in selection.by_type.values()
        )
    return total


def _field_requested(cost: FieldCost, variables: Mapping[str, Any] | None, model: CostModel) -> int:
    inner = _selection_requested(cost.selection, variables, model) if cost.selection else 0
    if cost.size is None:
        return cost.base + inner
    return cost.base + cost.size.resolve(variables, model.max_page_size) * (cost.item + inner)


def _selection_actual(selection: SelectionCost, data: Mapping[str, Any]) -> int:
    total = 0
    for key, cost in selection.fields.items():
        if key in data:
            total += _field_actual(cost, data[key])
    if selection.by_type:
        total += max(
            sum(_field_actual(cost, data[key]) for key, cost in fields.items() if key in data)
            for fields in selection.by_type.values()
        )
    return total


def _field_actual(cost: FieldCost, value: Any) -> int:
    if value is None:
        return cost.base
    if cost.size is None:
        return cost.base + (_value_actual(cost, value) if cost.selection else 0)
    return cost.base + _items_actual(cost, value)


def _items_actual(cost: FieldCost, value: Any) -> int:
    if not isinstance(value, list):
        return 0
    total = 0
    for item in value:
        if isinstance(item, list):  # a list of lists: every inner item counts
            total += _items_actual(cost, item)
        elif item is not None:
            total += cost.item + (_value_actual(cost, item) if cost.selection else 0)
    return total


def _value_actual(cost: FieldCost, value: Any) -> int:
    assert cost.selection is not None
    return _selection_actual(cost.selection, value) if isinstance(value, Mapping) else 0


class _Planner:
    """Builds the cost plan of one operation, fragments inlined and fields merged."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        model: CostModel,
    ) -> None:
        self.schema = schema
        self.model = model
        self.fragments = fragments
        self.variable_defaults: dict[str, Any] = {
            definition.variable.name.value: definition.default_value
            for definition in operation.variable_definitions or ()
        }
        self.visited_fields = 0
        self.static = True

    def selection(
        self,
        parent: GraphQLNamedType,
        nodes: list[FieldNode] | SelectionSetNode,
        *,
        root_cost: int | None = None,
        page: Size | None = None,
    ) -> SelectionCost | None:
        """The cost of the merged selection sets of `nodes` (fields sharing a response key).

        `root_cost` is the cost of each root field (mutations); `page` the page size of
        the connection whose selection this is.
        """
        selection_sets = (
            [nodes]
            if isinstance(nodes, SelectionSetNode)
            else [n.selection_set for n in nodes if n.selection_set]
        )
        groups = collect(
            selection_sets,
            self.fragments,
            include=literally_included,
            narrow=lambda group, condition: self._group(parent, condition, group),
            on_field=self._count_field,
        )
        result = SelectionCost()
        for type_name, fields in groups.items():
            owner = parent if type_name is None else self.schema.type_map[type_name]
            costs = {
                key: cost
                for key, same_key in fields.items()
                if (cost := self._field(owner, same_key, root_cost, page)) is not None
            }
            if type_name is None:
                result.fields = costs
            elif costs:
                result.by_type[type_name] = costs
        if not result.fields and not result.by_type:
            return None
        return result

    def _count_field(self) -> None:
        self.visited_fields += 1
        if self.visited_fields > MAX_EXPANDED_FIELDS:
            raise QueryTooComplex(
                f"The operation selects more than {MAX_EXPANDED_FIELDS} fields "
                "once its fragments are inlined"
            )

    def _group(
        self, parent: GraphQLNamedType, condition: str | None, group: str | None
    ) -> str | None:
        # Only a concrete type inside an abstract parent narrows what is selected.
        if group is not None or condition is None or condition == parent.name:
            return group
        if not isinstance(parent, GraphQLAbstractType):
            return group
        narrowed = self.schema.type_map.get(condition)
        return condition if isinstance(narrowed, GraphQLObjectType) else group

    def _field(
        self,
        owner: GraphQLNamedType,
        nodes: list[FieldNode],
        root_cost: int | None,
        page: Size | None,
    ) -> FieldCost | None:
        node = nodes[0]
        name = node.name.value
        if name == "__typename":
            return None
        if name in ("__schema", "__type"):
            return FieldCost(INTROSPECTION_COST)
        definition = _field_definition(owner, name)
        if definition is None:  # validation reports it; plans are built for valid documents
            return None
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            if name == TOTAL_COUNT_FIELD and owner.name.endswith("Connection"):
                declared = _declared_cost(definition)
                cost = self.model.default_page_size if declared is None else declared
                if root_cost or cost:
                    return FieldCost(root_cost or cost)
                return None
            return FieldCost(root_cost) if root_cost else None
        if named.name.endswith("Connection"):
            selection = self.selection(named, nodes, page=self._page_size(node))
            return FieldCost(root_cost or CONNECTION_COST, None, 0, selection)
        selection = self.selection(named, nodes)
        if not _is_list(definition.type):
            return FieldCost(root_cost or OBJECT_COST, None, 0, selection)
        if page is not None:  # a connection's `edges` (or `nodes`): the page itself
            item = 0 if named.name.endswith("Edge") else OBJECT_COST
            return FieldCost(root_cost or 0, page, item, selection)
        by_argument = self._size_from_list_argument(node, definition)
        if by_argument is not None:  # the objects are named one by one: each counts
            return FieldCost(root_cost or 0, by_argument, OBJECT_COST, selection)
        # A small fixed list comes in one batch: it costs as one object, and what each
        # item selects beyond its scalars counts per item.
        return FieldCost(root_cost or OBJECT_COST, Size(literal=PLAIN_LIST_SIZE), 0, selection)

    def _page_size(self, node: FieldNode) -> Size:
        literal: int | None = None
        variables: list[str] = []
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                literal = max(literal or 0, int(value.value))
            elif isinstance(value, VariableNode):
                variables.append(value.name.value)
        return self._size(
            literal, variables, list_length=False, fallback=self.model.default_page_size
        )

    def _size_from_list_argument(self, node: FieldNode, definition: GraphQLField) -> Size | None:
        for argument in node.arguments or ():
            argument_type = definition.args[argument.name.value].type
            if isinstance(argument_type, GraphQLNonNull):
                argument_type = argument_type.of_type
            if not isinstance(argument_type, GraphQLList):
                continue
            value = argument.value
            if isinstance(value, ListValueNode):
                return Size(literal=len(value.values))
            if isinstance(value, VariableNode):
                return self._size(
                    None, [value.name.value], list_length=True, fallback=PLAIN_LIST_SIZE
                )
        return None

    def _size(
        self, literal: int | None, variables: list[str], *, list_length: bool, fallback: int
    ) -> Size:
        if variables:
            self.static = False
        defaults = tuple(
            _literal_size(self.variable_defaults.get(name), list_length) for name in variables
        )
        return Size(
            literal=literal,
            variables=tuple(variables),
            defaults=defaults,
            list_length=list_length,
            fallback=fallback,
        )


def _literal_size(value: ValueNode | None, list_length: bool) -> int | None:
    if list_length:
        return len(value.values) if isinstance(value, ListValueNode) else None
    return int(value.value) if isinstance(value, IntValueNode) else None


def _field_definition(owner: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = owner.fields.get(name)
        return found
    return None


def _declared_cost(definition: GraphQLField) -> int | None:
    strawberry_field = field_definition(definition)
    metadata: Mapping[str, Any] = (strawberry_field.metadata if strawberry_field else None) or {}
    cost = metadata.get(COST_METADATA_KEY)
    return cost if isinstance(cost, int) and not isinstance(cost, bool) else None


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def plan_operations(
    schema: GraphQLSchema, document: DocumentNode, model: CostModel
) -> dict[str | None, CostPlan]:
    """The cost plan of each operation of a valid document; QueryTooComplex if one explodes."""
    fragments = fragments_of(document)
    plans: dict[str | None, CostPlan] = {}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        root = schema.get_root_type(definition.operation)
        if root is None:
            continue
        planner = _Planner(schema, fragments, definition, model)
        root_cost = MUTATION_COST if definition.operation is OperationType.MUTATION else None
        selection = planner.selection(root, definition.selection_set, root_cost=root_cost)
        selection = selection or SelectionCost()
        plan = CostPlan(selection, model, None)
        if planner.static:
            plan.static_cost = _selection_requested(selection, None, model)
        plans[definition.name.value if definition.name else None] = plan
    return plans
