"""Valid query documents over a real GraphQL schema, to run through two engines and compare.

`documents(schema, pools)` draws a `GeneratedDocument`: one query operation walked from
the Query type (bounded depth and width) with aliases (the same field twice with other
arguments, the same root field twice), arguments as literals and as variables (page
sizes within and beyond the cap, real and bogus IDs, cursors and slugs, filters, sorts),
inline fragments and named fragments (on the object type itself and on its interfaces),
`@skip`/`@include` with literal and variable conditions, and `__typename` anywhere. It
comes with two sets of variable values that differ in the directive variables (true,
false, explicit null, or not sent), so running it twice through one executor shows
whether a plan cache keys on those values. Only documents that pass graphql-core's
validation are drawn. `reversed_fields` gives the same document with every selection
set in reverse order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SchemaMetaFieldDef,
    SelectionNode,
    SelectionSetNode,
    TypeMetaFieldDef,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    is_leaf_type,
    parse_type,
    print_ast,
    validate,
    visit,
)
from hypothesis import assume
from hypothesis import strategies as st

from tests.graphql_values import (
    MISSING,
    Pools,
    argument_value,
    directive_value,
    has_default,
    literal,
)

# Field nesting below the root: products { edges { node { reviews { totalCount } } } } is 5.
MAX_DEPTH = 5
MAX_WIDTH = 3  # selections per selection set
MAX_FIELDS = 30  # per document: keeps one example to a few dozen loader calls
MAX_FRAGMENTS = 3


@dataclass(frozen=True)
class GeneratedDocument:
    """A valid query document and the variables of its two runs."""

    document: DocumentNode
    runs: tuple[dict[str, Any], ...]
    directive_variables: tuple[str, ...]

    def __repr__(self) -> str:
        runs = [{name: _short(value) for name, value in run.items()} for run in self.runs]
        return f"{print_ast(self.document)}\nruns: {runs}"


def _short(value: Any) -> Any:
    """A long list as its first item times its length (101 IDs print as one)."""
    if isinstance(value, list) and len(value) > 5 and all(item == value[0] for item in value):
        return f"[{value[0]!r}] * {len(value)}"
    return value


@dataclass
class _State:
    """What one document being drawn has used so far."""

    fields: int = 0
    aliases: int = 0
    variable_definitions: list[VariableDefinitionNode] = field(default_factory=list)
    argument_values: dict[str, Any] = field(default_factory=dict)
    directive_variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fragments: list[FragmentDefinitionNode] = field(default_factory=list)
    fragment_count: int = 0


def _name(value: str) -> NameNode:
    return NameNode(value=value)


class _Builder:
    """Draws one operation; `draw` is hypothesis's."""

    def __init__(self, draw: st.DrawFn, schema: GraphQLSchema, pools: Pools) -> None:
        self.draw = draw
        self.schema = schema
        self.pools = pools
        self.state = _State()
        self.composites = [
            named
            for name, named in schema.type_map.items()
            if not name.startswith("__")
            and isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
            and named is not schema.mutation_type
            and named is not schema.subscription_type
        ]

    # --- selections ---------------------------------------------------------------

    def selection_set(self, parent: GraphQLNamedType, depth: int) -> SelectionSetNode:
        """One to MAX_WIDTH selections on `parent` (an object, interface or union type)."""
        count = self.draw(st.integers(1, MAX_WIDTH))
        used_keys: set[str] = set()
        chosen: list[FieldNode] = []
        selections: list[SelectionNode] = []
        for _ in range(count):
            kind = self.draw(
                st.sampled_from(["field"] * 6 + ["typename", "inline", "spread"])
                if self.state.fields < MAX_FIELDS
                else st.just("typename")
            )
            if kind == "field" and isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                selections.append(self.field(parent, depth, used_keys, chosen))
            elif kind == "inline":
                selections.append(self.inline_fragment(parent, depth))
            elif kind == "spread" and self.state.fragment_count < MAX_FRAGMENTS:
                selections.append(self.fragment_spread(parent, depth))
            else:
                selections.append(self.typename(used_keys))
        return SelectionSetNode(selections=tuple(selections))

    def typename(self, used_keys: set[str]) -> FieldNode:
        """`__typename`, under an alias now and then."""
        alias = self.alias() if self.draw(st.booleans()) else None
        used_keys.add(alias.value if alias else "__typename")
        return FieldNode(
            name=_name("__typename"), alias=alias, arguments=(), directives=self.directives()
        )

    def alias(self) -> NameNode:
        """A fresh alias (never a conflict with another response key)."""
        self.state.aliases += 1
        return _name(f"a{self.state.aliases}")

    def field(
        self,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        depth: int,
        used_keys: set[str],
        chosen: list[FieldNode],
    ) -> FieldNode:
        """A field of `parent` with arguments, maybe an alias, directives and a subselection."""
        if chosen and self.draw(st.integers(0, 2)) == 0:
            return self.field_again(parent, depth, used_keys, chosen)
        choices: list[tuple[str, GraphQLField]] = list(parent.fields.items())
        if parent is self.schema.query_type and self.draw(st.integers(0, 7)) == 0:
            # Introspection roots, now and then: such documents run on graphql-core.
            choices = [("__type", TypeMetaFieldDef), ("__schema", SchemaMetaFieldDef)]
        if depth >= MAX_DEPTH:
            leaves = [choice for choice in choices if is_leaf_type(get_named_type(choice[1].type))]
            choices = leaves or choices
        name, definition = self.draw(st.sampled_from(choices))
        self.state.fields += 1
        arguments = self.arguments(definition)
        alias = None
        if (name in used_keys and definition.args) or self.draw(st.integers(0, 3)) == 0:
            alias = self.alias()
        used_keys.add(alias.value if alias else name)
        named = get_named_type(definition.type)
        selection_set = None if is_leaf_type(named) else self.selection_set(named, depth + 1)
        made = FieldNode(
            name=_name(name),
            alias=alias,
            arguments=arguments,
            directives=self.directives(),
            selection_set=selection_set,
        )
        chosen.append(made)
        return made

    def field_again(
        self,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        depth: int,
        used_keys: set[str],
        chosen: list[FieldNode],
    ) -> FieldNode:
        """A field chosen before in this selection set, again under a new alias.

        With the same or other arguments, and its subselection followed by more fields,
        as clients ask for one list twice: the two then share loader calls.
        """
        earlier = self.draw(st.sampled_from(chosen))
        name = earlier.name.value
        definition = _META_FIELDS.get(name) or parent.fields[name]
        self.state.fields += 1
        arguments = earlier.arguments if self.draw(st.booleans()) else self.arguments(definition)
        alias = self.alias()
        used_keys.add(alias.value)
        selection_set = earlier.selection_set
        if selection_set is not None and self.draw(st.booleans()):
            more = self.selection_set(get_named_type(definition.type), depth + 1)
            selection_set = SelectionSetNode(
                selections=(*selection_set.selections, *more.selections)
            )
        return FieldNode(
            name=earlier.name,
            alias=alias,
            arguments=arguments,
            directives=self.directives(),
            selection_set=selection_set,
        )

    def type_condition(self, parent: GraphQLNamedType) -> GraphQLNamedType:
        """A composite type whose possible types overlap the parent's."""
        possible = set(self._possible(parent))
        overlapping = [
            named
            for named in self.composites
            if named is not parent and possible & set(self._possible(named))
        ]
        return self.draw(st.sampled_from([parent, *overlapping]))

    def _possible(self, named: GraphQLNamedType) -> list[str]:
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            return [object_type.name for object_type in self.schema.get_possible_types(named)]
        return [named.name]

    def inline_fragment(self, parent: GraphQLNamedType, depth: int) -> InlineFragmentNode:
        """`... on T { }` (T overlapping the parent) or `... { }`."""
        condition = self.type_condition(parent) if self.draw(st.integers(0, 3)) else None
        return InlineFragmentNode(
            type_condition=NamedTypeNode(name=_name(condition.name)) if condition else None,
            directives=self.directives(),
            selection_set=self.selection_set(condition or parent, depth),
        )

    def fragment_spread(self, parent: GraphQLNamedType, depth: int) -> FragmentSpreadNode:
        """A spread of a finished fragment that fits here, or of a new one."""
        possible = set(self._possible(parent))
        fitting = [
            fragment
            for fragment in self.state.fragments
            if possible
            & set(self._possible(self.schema.type_map[fragment.type_condition.name.value]))
        ]
        if fitting and self.draw(st.booleans()):
            fragment = self.draw(st.sampled_from(fitting))
        else:
            condition = self.type_condition(parent)
            name = f"F{self.state.fragment_count}"
            self.state.fragment_count += 1
            # Finished before it is listed: a fragment never spreads itself (no cycles).
            fragment = FragmentDefinitionNode(
                name=_name(name),
                type_condition=NamedTypeNode(name=_name(condition.name)),
                directives=(),
                selection_set=self.selection_set(condition, depth),
            )
            self.state.fragments.append(fragment)
        return FragmentSpreadNode(name=fragment.name, directives=self.directives())

    # --- directives -----------------------------------------------------------------

    def directives(self) -> tuple[DirectiveNode, ...]:
        """Mostly none; else @skip or @include (or both) on a literal or a variable."""
        made = []
        for directive in ("skip", "include"):
            if self.draw(st.integers(0, 5)) == 0:
                made.append(
                    DirectiveNode(
                        name=_name(directive),
                        arguments=(ArgumentNode(name=_name("if"), value=self.condition()),),
                    )
                )
        return tuple(made)

    def condition(self) -> ValueNode:
        """A literal true/false, or a Boolean variable (new or reused)."""
        if self.draw(st.integers(0, 2)) == 0:
            return BooleanValueNode(value=self.draw(st.booleans()))
        known = sorted(self.state.directive_variables)
        if known and self.draw(st.booleans()):
            return VariableNode(name=_name(self.draw(st.sampled_from(known))))
        name = f"d{len(known)}"
        # A nullable variable needs a default to stand where Boolean! is expected.
        kind, default = self.draw(
            st.sampled_from(
                [
                    ("Boolean!", MISSING),
                    ("Boolean", False),
                    ("Boolean", True),
                    ("Boolean!", True),
                    ("Boolean!", False),
                ]
            )
        )
        self.state.directive_variables[name] = (kind, default)
        self._define(name, kind, default)
        return VariableNode(name=_name(name))

    def _define(self, name: str, type_text: str, default: Any) -> None:
        self.state.variable_definitions.append(
            VariableDefinitionNode(
                variable=VariableNode(name=_name(name)),
                type=parse_type(type_text),
                default_value=None if default is MISSING else literal(default),
                directives=(),
            )
        )

    # --- arguments ------------------------------------------------------------------

    def arguments(self, definition: GraphQLField) -> tuple[ArgumentNode, ...]:
        """Required arguments always, optional ones now and then; literals or variables."""
        made = []
        for name, argument in definition.args.items():
            required = isinstance(argument.type, GraphQLNonNull) and not has_default(argument)
            if not required and self.draw(st.booleans()):
                continue
            value = argument_value(self.draw, self.pools, name, argument.type)
            if self.draw(st.integers(0, 4)) == 0:
                variable = f"v{len(self.state.argument_values)}"
                self._define(variable, str(argument.type), MISSING)
                # A nullable variable may also be left out (it is null then).
                sent = value
                if value is None and not isinstance(argument.type, GraphQLNonNull):
                    sent = self.draw(st.sampled_from([None, MISSING]))
                self.state.argument_values[variable] = sent
                node: ValueNode = VariableNode(name=_name(variable))
            else:
                node = literal(value)
            made.append(ArgumentNode(name=_name(name), value=node))
        return tuple(made)


_META_FIELDS = {"__type": TypeMetaFieldDef, "__schema": SchemaMetaFieldDef}


@st.composite
def documents(draw: st.DrawFn, schema: GraphQLSchema, pools: Pools) -> GeneratedDocument:
    """A valid query document over `schema` and the variables of its two runs."""
    builder = _Builder(draw, schema, pools)
    assert schema.query_type is not None
    selection_set = builder.selection_set(schema.query_type, 1)
    state = builder.state
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY,
        name=_name("Generated") if draw(st.booleans()) else None,
        variable_definitions=tuple(state.variable_definitions),
        directives=(),
        selection_set=selection_set,
    )
    document = DocumentNode(definitions=(operation, *state.fragments))
    assume(not validate(schema, document))
    runs = []
    for _ in range(2):
        values = {
            name: directive_value(draw, kind, default)
            for name, (kind, default) in state.directive_variables.items()
        }
        runs.append(values)
    names = sorted(state.directive_variables)
    if names and runs[0] == runs[1]:
        first = names[0]
        runs[1][first] = runs[0][first] is not True  # the second run must see other values
    return GeneratedDocument(
        document=document,
        runs=tuple(
            {
                name: value
                for name, value in {**state.argument_values, **run}.items()
                if value is not MISSING
            }
            for run in runs
        ),
        directive_variables=tuple(names),
    )


class _Reverse(Visitor):
    def leave_selection_set(self, node: SelectionSetNode, *_: Any) -> SelectionSetNode:
        return SelectionSetNode(selections=tuple(reversed(node.selections)))


def reversed_fields(document: DocumentNode) -> DocumentNode:
    """The same document with every selection set (fragments too) in reverse order."""
    reversed_document = visit(document, _Reverse())
    assert isinstance(reversed_document, DocumentNode)
    return reversed_document
