"""Method points: every trained configuration of a method, each of finetune.methods as configured and each point of
its finetune.sweep, by a readable id; and the example sets that advaug's points train on."""

import itertools

from .schema import method_schema

# the synonym-hull methods (advlm/training/synonym_hull.py): they train on the counter-fitted vectors' synonyms
SYNONYM_HULL_METHODS = ("ascc", "dne")
# the methods with a continuous perturbation budget that finetune.budget_ramp_epochs ramps (advlm.training.loop's
# has_budget; tests/test_methods.py checks that the two agree)
RAMPED_METHODS = ("pgd", "freelb", "lds", "infobert", *SYNONYM_HULL_METHODS)
ADVAUG_EXAMPLE_KEYS = ("attack", "share", "query_budget")  # what attack_train's examples depend on


def method_params(config, method):
    """A method's hyperparameters: the schema's defaults updated with finetune.method_params.<method>."""
    defaults = {key: spec["default"] for key, spec in method_schema(method).get("properties", {}).items()}
    return defaults | config["finetune"]["method_params"].get(method, {})


def point_id(method, values):
    """A point's readable id: the method, then each swept parameter's value (pgd-epsilon=1-steps=5). Method names
    hold no '-', so the method is the id's first part (workflow_scripts/finetune.py reads it so)."""
    return "-".join([method, *(f"{name}={_id_value(value)}" for name, value in values.items())])


def _id_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def method_points(config):
    """Every trained configuration, by id: each of finetune.methods as configured (the id is its name), then each
    point of its finetune.sweep, named by the parameters it changes from the configured ones only, so that sweeping
    one more parameter renames no existing point (a point equal to the configured parameters is the method's own
    model, not a second one). Each maps to {"method", "overrides": the values it changes}."""
    points = {}
    for method in config["finetune"]["methods"]:
        points[method] = {"method": method, "overrides": {}}
        for overrides in changed_points(config, method):
            points.setdefault(point_id(method, overrides), {"method": method, "overrides": overrides})
    return points


def changed_points(config, method):
    """Each sweep point of ``method`` as the values it changes from method_params (1 and 1.0 equal), none empty."""
    configured = method_params(config, method)
    points = []
    for point in sweep_points(config["finetune"]["sweep"].get(method, {})):
        changed = {name: value for name, value in point.items() if configured.get(name) != value}
        if changed:
            points.append(changed)
    return points


def sweep_points(sweep):
    """A method's sweep as the parameter values of each point: a list of points as it is, a grid expanded."""
    if isinstance(sweep, list):
        return sweep
    return [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]


def points_of(config, *methods):
    """The ids of the points (configured and swept) of ``methods``."""
    return [point for point, found in method_points(config).items() if found["method"] in methods]


def point_method(config, point):
    """The training method of a point id (``pretrained``, the neuron probes' reference, is its own)."""
    return method_points(config).get(point, {"method": point})["method"]


def point_params(config, point):
    """A point's hyperparameters: its method's (method_params) with the swept values set."""
    found = method_points(config)[point]
    return method_params(config, found["method"]) | found["overrides"]


def finetune_method_params(config, point):
    """The finetune rule's method parameters: finetune.method_params.<method> as written, with a point's swept
    values set (the training code fills the defaults; an unswept model's parameters are unchanged by sweeps)."""
    found = method_points(config)[point]
    return config["finetune"]["method_params"].get(found["method"], {}) | found["overrides"]


def swept_values(config, point):
    """The values of the parameters its method's sweep varies, for a point ({} for an unswept method)."""
    sweep = config["finetune"]["sweep"].get(method_points(config)[point]["method"], {})
    names = dict.fromkeys(name for values in sweep_points(sweep) for name in values)  # in the order written
    params = point_params(config, point)
    return {name: params[name] for name in names}


def advaug_examples(config):
    """attack_train's example sets by name, each with its advaug parameters: "adversarial" for advaug as configured,
    and one more per sweep point that changes the attack, share or query budget (not for weight alone)."""
    return {
        advaug_examples_name(config, point): method_params(config, "advaug") | _examples_overrides(config, point)
        for point in points_of(config, "advaug")
    }


def advaug_examples_name(config, point):
    """The example set an advaug point trains on (advaug_examples)."""
    return point_id("adversarial", _examples_overrides(config, point))


def _examples_overrides(config, point):
    """The swept values of an advaug point that change its examples (ADVAUG_EXAMPLE_KEYS) from the configured ones."""
    configured = method_params(config, "advaug")
    overrides = method_points(config)[point]["overrides"]
    return {key: value for key, value in overrides.items() if key in ADVAUG_EXAMPLE_KEYS and value != configured[key]}
