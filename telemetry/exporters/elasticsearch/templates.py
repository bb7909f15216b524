"""The shipped ILM policy and index template, and putting them into Elasticsearch.

The JSON files beside this module are the request bodies of ``PUT _ilm/policy/<name>`` and
``PUT _index_template/<name>`` as Elasticsearch documents them, so the same files serve the sink, the
Fluentd image in compose/ (which mounts the template) and anyone installing them by hand with curl.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, UnsupportedProductError

HERE = Path(__file__).parent
INDEX_TEMPLATE_FILE = HERE / "index_template.json"
ILM_POLICY_FILE = HERE / "ilm_policy.json"


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def ilm_policy() -> dict[str, Any]:
    return copy.deepcopy(_load(ILM_POLICY_FILE))


def index_template(data_stream: str, policy: str) -> dict[str, Any]:
    """The shipped template, matching exactly ``data_stream`` and naming ``policy`` for its backing indices."""
    template = copy.deepcopy(_load(INDEX_TEMPLATE_FILE))
    template["index_patterns"] = [data_stream]
    template["template"]["settings"]["index.lifecycle.name"] = policy
    return template


def mapping() -> dict[str, Any]:
    """The shipped mapping (``mappings`` of the index template)."""
    return copy.deepcopy(_load(INDEX_TEMPLATE_FILE)["template"]["mappings"])


def install(client: Elasticsearch, data_stream: str, policy: str) -> str:
    """Put the policy if it is missing and the template always; raises the client's errors.

    Both are idempotent. An existing policy is left alone because operators tune retention in Kibana;
    the template is meshscope's mapping, so a newer meshscope's replaces an older one (it applies to
    the next backing index, at rollover). The template does not depend on the policy: a user without
    ILM privileges (403 on reading or putting it) still gets the template, hence a data stream, and
    the refusal is returned as text to be logged ("" when the policy is in place).
    """
    problem = ""
    try:
        try:
            client.ilm.get_lifecycle(name=policy)
        except NotFoundError:
            client.ilm.put_lifecycle(name=policy, body=ilm_policy())
    except ApiError as error:
        if isinstance(error, UnsupportedProductError) or error.status_code not in (400, 403):
            raise  # unreachable, overloaded, wrong credentials: the whole install is tried again
        problem = f"HTTP {error.status_code}: {error.message}"
    client.indices.put_index_template(name=data_stream, body=index_template(data_stream, policy))
    return problem
