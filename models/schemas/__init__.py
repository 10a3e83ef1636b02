"""JSON ⇄ domain: the one validation boundary of Windmaker's domain layer.

Every request that enters the system — an API body, a CLI scenario file, a stored job —
goes through `parse_request`, which turns JSON-shaped data into the frozen dataclasses of
`models.request` or raises `RequestValidationError` naming *every* offending field.
Plans leave through `plan_to_dict` / `PlanSchema`.

Error paths follow marshmallow's nesting (list indices become string keys so the dict is
plain JSON), e.g. ``{"partners": {"3": {"response": {"subsidy": {"scale": ["must be > 0"]}}}}}``.

The package is split by subject: `errors`, `base` (fields), `curves`, `resources` (and
tiers), `partners`, `constraints`, `options`, `references` (cross-checks), `ordered`
(attributes compared by order must be numbers), `request`, `stored` (requests read back
from storage, partners rebuilt without re-validation) and `plan`. Everything other
code uses is re-exported here, so `from models.schemas import X` is the import to use.
The curve rules (`curve_parameter_errors`, `points_errors`) live in
`models.schemas.curves` once and are shared with `models.csvio`.
"""

from models.schemas.base import (
    RESERVED_ATTRIBUTES,
    BaseSchema,
    BoolArray,
    Count,
    JsonFloat,
    NamedMap,
    Real,
    Scalar,
    WhereField,
)
from models.schemas.constraints import (
    CONSTRAINT_SCHEMAS,
    ConstraintField,
    EligibilitySchema,
    GroupBudgetSchema,
    GroupCountSchema,
    MaxShareSchema,
    OnePackageSchema,
    PinSchema,
)
from models.schemas.curves import (
    CURVE_FIELDS,
    NUMERIC_CURVE_PARAMETERS,
    CurveSchema,
    curve_parameter_errors,
    curve_to_dict,
    points_errors,
)
from models.schemas.errors import RequestValidationError
from models.schemas.options import MAX_PLANS, OptionsSchema
from models.schemas.ordered import ORDERING_OPERATORS, ordered_attributes
from models.schemas.partners import (
    BoundsSchema,
    FixtureSchema,
    PackageSchema,
    PartnerSchema,
    PartnersField,
)
from models.schemas.plan import (
    AllocationSchema,
    ObjectiveReportSchema,
    PlanSchema,
    ResourceReportSchema,
    SolverReportSchema,
    TierReportSchema,
    plan_from_dict,
    plan_to_dict,
    plans_to_list,
)
from models.schemas.request import (
    AllocationRequestSchema,
    nonfinite_messages,
    parse_request,
    request_to_dict,
)
from models.schemas.resources import PLAN_CSV_COLUMNS, ResourceSchema, TierSchema
from models.schemas.stored import parse_stored_request

__all__ = [
    "CONSTRAINT_SCHEMAS",
    "CURVE_FIELDS",
    "MAX_PLANS",
    "NUMERIC_CURVE_PARAMETERS",
    "ORDERING_OPERATORS",
    "PLAN_CSV_COLUMNS",
    "RESERVED_ATTRIBUTES",
    "AllocationRequestSchema",
    "AllocationSchema",
    "BaseSchema",
    "BoolArray",
    "BoundsSchema",
    "ConstraintField",
    "Count",
    "CurveSchema",
    "EligibilitySchema",
    "FixtureSchema",
    "GroupBudgetSchema",
    "GroupCountSchema",
    "JsonFloat",
    "MaxShareSchema",
    "NamedMap",
    "ObjectiveReportSchema",
    "OnePackageSchema",
    "OptionsSchema",
    "PackageSchema",
    "PartnerSchema",
    "PartnersField",
    "PinSchema",
    "PlanSchema",
    "Real",
    "RequestValidationError",
    "ResourceReportSchema",
    "ResourceSchema",
    "Scalar",
    "SolverReportSchema",
    "TierReportSchema",
    "TierSchema",
    "WhereField",
    "curve_parameter_errors",
    "curve_to_dict",
    "nonfinite_messages",
    "ordered_attributes",
    "parse_request",
    "parse_stored_request",
    "plan_from_dict",
    "plan_to_dict",
    "plans_to_list",
    "points_errors",
    "request_to_dict",
]
