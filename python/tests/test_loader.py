"""The unified YAML loader: types, defaults, file:line:key errors, unknown-key warnings,
``${ENV}``/``{{var}}`` expansion and the JSONPath subset."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perfsink.unified import jsonpath
from perfsink.unified.expand import ExpandError, expand_env, render
from perfsink.unified.loader import LoadError, is_unified, load_suite


def write(tmp_path: Path, text: str, name: str = "t.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


FULL = """
test_info:
  test_suite_name: Shop suite
  test_suite_type: unified
  tags: [smoke, p1]
reporting: {output_dir: out}
target: {start: perfsink.target, port: 0}
k6_tests:
  api_load:
    tool: k6
    tags: load, p2
    scenarios:
      - {name: home, url: "${TARGET_URL}/"}
      - name: login
        url: "${TARGET_URL}/api/login"
        method: post
        headers: {X-Num: 5}
        body: {username: a}
    options: {stages: [{duration: 1s, target: 2}]}
    thresholds: {http_req_failed: ["rate<0.01"]}
  own_script:
    script: scripts/mine.js
jmeter_tests:
  jm:
    scenarios: [{name: items, url: "http://h/api/items?page=2"}]
    thread_group_config: {num_threads: 4, ramp_time: 1, duration: 5}
    thresholds: {error_rate: 0.05}
    properties: {foo: bar}
workflows:
  shop:
    name: Shop journey
    iterations: 2
    concurrent_users: 3
    thresholds: {error_rate: 0.1, p95_ms: 250}
    steps:
      - name: login
        action: api_call
        method: POST
        url: "${TARGET_URL}/api/login"
        body: {username: "user{{vu}}"}
        extract: {token: "$.data.token"}
      - name: items
        url: "${TARGET_URL}/api/items"
        iterations: 5
        iteration_config: {delay_between: 0.1, fail_on_error: true}
        expect_status: [200, 204]
      - name: load
        action: k6_test
        k6_config:
          scenarios: [{url: "http://h/"}]
          options: {vus: 1, iterations: 1}
"""


def test_full_file_types_and_defaults(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, FULL))
    assert suite.warnings == []
    assert suite.name == "Shop suite" and suite.tags == ["smoke", "p1"]
    assert suite.reporting.output_dir == "out"
    assert suite.target is not None and suite.target.env == "TARGET_URL"

    k6, own = suite.k6_tests
    assert (k6.name, k6.tool, k6.tags) == ("api_load", "k6", ["load", "p2"])
    assert k6.scenarios[1].method == "POST" and k6.scenarios[1].body == {"username": "a"}
    assert k6.scenarios[1].headers == {"X-Num": "5"}  # header values are strings
    # the user's options unchanged (no default duration clashing with stages), thresholds folded in
    assert k6.options == {
        "stages": [{"duration": "1s", "target": 2}],
        "thresholds": {"http_req_failed": ["rate<0.01"]},
    }
    assert (own.script, own.scenarios, own.tool) == ("scripts/mine.js", [], None)

    (jm,) = suite.jmeter_tests
    tg = jm.thread_group_config
    assert (tg.num_threads, tg.ramp_time, tg.duration, tg.loops) == (4, 1.0, 5.0, None)
    assert jm.thresholds.error_rate == 0.05 and jm.properties == {"foo": "bar"}
    assert jm.scenarios[0].url.endswith("?page=2")

    (wf,) = suite.workflows
    assert (wf.name, wf.display_name, wf.iterations, wf.concurrent_users) == ("shop", "Shop journey", 2, 3)
    assert (wf.thresholds.error_rate, wf.thresholds.p95_ms) == (0.1, 250.0)
    login, items, load = wf.steps
    assert login.extract == {"token": "$.data.token"} and login.line == 35
    assert items.action == "api_call" and items.iterations == 5 and items.expect_status == [200, 204]
    assert items.iteration_config.delay_between == 0.1 and items.iteration_config.fail_on_error
    assert load.k6_config is not None and load.k6_config.name == "load"


def test_unknown_and_ignored_keys_are_warnings_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        x-common: &c {method: GET}
        workflows:
          w:
            colour: blue
            aggregator: selective
            steps:
              - url: http://h/
                <<: *c
                retries: 3
        """,
    )
    suite = load_suite(path)
    assert [str(w) for w in suite.warnings] == [
        f"{path}:4: unknown key 'workflows.w.colour' (ignored)",
        f"{path}:5: ignored key 'workflows.w.aggregator' (per-step points are written, no aggregation)",
        f"{path}:9: unknown key 'workflows.w.steps[0].retries' (ignored)",
    ]
    assert [(w.line, w.key) for w in suite.warnings][-1] == (9, "workflows.w.steps[0].retries")


@pytest.mark.parametrize(
    "text, line, key, message",
    [
        (
            "workflows:\n  w:\n    iterations: two\n    steps: [{url: 'http://h/'}]\n",
            3,
            "workflows.w.iterations",
            "expected an integer, got str 'two'",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - url: http://h/\n        iterations: true\n",
            5,
            "workflows.w.steps[0].iterations",
            "expected an integer, got bool 'true'",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - url: http://h/\n        headers: [a]\n",
            5,
            "workflows.w.steps[0].headers",
            "expected a mapping, got a list",
        ),
        (
            "k6_tests:\n  k:\n    scenarios:\n      - name: a\n",
            4,
            "k6_tests.k.scenarios[0]",
            "'url' is required",
        ),
        (
            "k6_tests:\n  k:\n    tool: jmeter\n    script: a.js\n",
            3,
            "k6_tests.k.tool",
            "must be 'k6' in this section, got 'jmeter'",
        ),
        (
            "k6_tests:\n  k:\n    options: {}\n",
            2,
            "k6_tests.k",
            "give either 'scenarios' (a non-empty list) or 'script'",
        ),
        (
            "jmeter_tests:\n  j:\n    jmx_file: a.jmx\n    thresholds: {error_rate: 2}\n",
            4,
            "jmeter_tests.j.thresholds.error_rate",
            "must be between 0.0 and 1.0, got 2.0",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - action: custom\n",
            4,
            "workflows.w.steps[0].action",
            "unknown action 'custom' (one of api_call, k6_test, jmeter_test)",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - action: k6_test\n",
            4,
            "workflows.w.steps[0]",
            "action k6_test needs 'k6_config'",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - url: http://h/\n        extract: {t: data.token}\n",
            5,
            "workflows.w.steps[0].extract.t",
            "JSONPath 'data.token' must start with $ (use $.a.b, $.a[0].b, $['a b'])",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - url: http://h/\n        method: FETCH\n",
            5,
            "workflows.w.steps[0].method",
            "unknown HTTP method 'FETCH' (one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - agent: a1\n        code: x\n",
            4,
            "workflows.w.steps[0].agent",
            "remote agents/code steps are not supported",
        ),
        (
            "test_info: {tags: [ok, 'not ok']}\nworkflows:\n  w: {steps: [{url: 'http://h/'}]}\n",
            1,
            "test_info.tags",
            "tag 'not ok' is not usable with -m (letters, digits, _ . : + -)",
        ),
        (
            "workflows:\n  w: {steps: [{url: 'http://h/'}]}\n  w: {steps: [{url: 'http://h/'}]}\n",
            3,
            "workflows.w",
            "duplicate key",
        ),
        (
            "workflows:\n  w:\n    steps:\n      - url: [http://h/\n",
            5,
            "",
            "malformed YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("workflows: [a, b]\n", 1, "workflows", "expected a mapping, got a list"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(LoadError) as err:
        load_suite(path)
    assert (err.value.file, err.value.line, err.value.key, err.value.message) == (path, line, key, message)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_is_unified(tmp_path: Path) -> None:
    assert is_unified(write(tmp_path, "jmeter_tests: {}\n"))
    assert not is_unified(write(tmp_path, "services: {db: {image: x}}\n"))
    assert not is_unified(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(LoadError):
        is_unified(write(tmp_path, "a: [\n"))


def test_env_expansion() -> None:
    env = {"T": "http://h:1", "EMPTY": ""}
    assert expand_env({"u": "${T}/x", "l": ["${MISSING:-d}", "$${T}", "${EMPTY:-e}"]}, env) == {
        "u": "http://h:1/x",
        "l": ["d", "${T}", "e"],
    }
    with pytest.raises(ExpandError, match=r"\$\{NOPE\} is not set"):
        expand_env("${NOPE}/x", env)


def test_expansion_keeps_names_and_copies_dataclasses(tmp_path: Path) -> None:
    suite = load_suite(
        write(tmp_path, "workflows:\n  w_${X}:\n    steps: [{name: 's${X}', url: '${T}/a'}]\n")
    )
    wf = suite.workflows[0]
    out = expand_env(wf, {"T": "http://h", "X": "1"})
    assert out.name == "w_${X}" and out.steps[0].name == "s${X}" and out.steps[0].url == "http://h/a"
    assert wf.steps[0].url == "${T}/a"  # the loaded suite is never modified


def test_templating() -> None:
    variables = {"token": "abc", "n": 5, "obj": {"a": 1}}
    assert render({"Authorization": "Bearer {{token}}"}, variables) == {"Authorization": "Bearer abc"}
    assert render({"count": "{{ n }}", "s": "n={{n}} {{obj}}"}, variables) == {
        "count": 5,
        "s": 'n=5 {"a": 1}',
    }
    with pytest.raises(ExpandError, match="token2"):
        render("{{token2}}", variables)


def test_jsonpath_subset() -> None:
    doc = {"data": {"token": "t", "items": [{"id": 1}, {"id": 2}], "a b": True}}
    assert jsonpath.find(doc, "$.data.token") == "t"
    assert jsonpath.find(doc, "$.data.items[0].id") == 1
    assert jsonpath.find(doc, "$.data.items[-1].id") == 2
    assert jsonpath.find(doc, "$['data']['a b']") is True
    assert jsonpath.find(doc, "$") == doc
    for bad in ("$.data.missing", "$.data.items[5]", "$.data.token.x", "$.data[0]"):
        with pytest.raises(jsonpath.PathError):
            jsonpath.find(doc, bad)
    for unsupported in ("$..id", "$.data.items[*]", "data.token"):
        with pytest.raises(jsonpath.PathError):
            jsonpath.parse(unsupported)
