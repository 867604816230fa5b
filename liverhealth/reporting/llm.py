"""The draft report from a vision-language model over an OpenAI-compatible API.

Defaults: DashScope's compatible mode with ``qwen-vl-max``; any OpenAI-compatible endpoint
(a local Ollama or vLLM server too) works by setting LIVERHEALTH_LLM_BASE_URL and
LIVERHEALTH_LLM_MODEL. The request carries the measured findings and two PNG images (the
slice and its overlay), never patient identifiers. Every failure becomes a one-line notice
and no draft: the report still has its measured findings.
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from liverhealth import config
from liverhealth.errors import LiverHealthError
from liverhealth.redact import safe_url, url_credentials

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
DEFAULT_MODEL = "qwen-vl-max"
DEFAULT_TIMEOUT_S = 60.0
MAX_DRAFT_CHARS = 20_000  # a draft report is a page or two; anything longer is cut, never waited for
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

SYSTEM_PROMPT = (
    "You assist a radiologist reading a contrast-enhanced abdominal CT. You receive one axial slice, "
    "the same slice with an automatic segmentation overlay (liver green, tumour red), and the measured "
    "findings computed from the segmentation. Write a short draft report in plain text: findings, then an "
    "impression. Use only the numbers given in the measured findings; never invent, round differently or "
    "add measurements, lesion counts or sizes. Do not give a LI-RADS category or a definitive diagnosis. "
    "If the images seem to disagree with the segmentation, say so. End with: 'Draft for radiologist "
    "review; not a medical device.'"
)


@dataclass(frozen=True)
class LlmSettings:
    """Where and how to ask for a draft. The API key is never shown in repr or messages, and a key
    written into the URL (``http://user:KEY@host/v1``) is taken out of it: ``endpoint`` is what
    is shown and stored. ``timeout_s`` bounds the whole draft, retries included."""

    base_url: str = field(default=DEFAULT_BASE_URL, repr=False)
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 2

    @classmethod
    def from_environment(cls) -> LlmSettings:
        """LIVERHEALTH_LLM_* (or DASHSCOPE_API_KEY) over the config file over the defaults."""
        key = config.setting("llm_api_key", "LIVERHEALTH_LLM_API_KEY") or os.environ.get("DASHSCOPE_API_KEY") or None
        raw_timeout = config.setting("llm_timeout_s", "LIVERHEALTH_LLM_TIMEOUT", "60") or "60"
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or not 1 <= timeout <= 3600:
            raise LiverHealthError(
                f"The LLM timeout '{raw_timeout[:20]}' (LIVERHEALTH_LLM_TIMEOUT or llm_timeout_s) "
                "is not a number of seconds between 1 and 3600."
            )
        return cls(
            base_url=config.setting("llm_base_url", "LIVERHEALTH_LLM_BASE_URL", DEFAULT_BASE_URL) or "",
            model=config.setting("llm_model", "LIVERHEALTH_LLM_MODEL", DEFAULT_MODEL) or "",
            api_key=key,
            timeout_s=timeout,
        )

    @property
    def endpoint(self) -> str:
        """The base URL as it may be shown or stored: no credentials, no secret query parameters."""
        return safe_url(self.base_url)

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc or self.endpoint

    @property
    def is_local(self) -> bool:
        try:
            return (urlsplit(self.base_url).hostname or "") in LOCAL_HOSTS
        except ValueError:
            return False

    def connection(self) -> tuple[str, str | None]:
        """(URL to connect to, API key): a key written into the URL is used as the key, outside the URL."""
        url, from_url = url_credentials(self.base_url)
        return url, self.api_key or from_url


@dataclass(frozen=True)
class DraftResult:
    """The draft text, or None and a notice saying why there is none."""

    text: str | None
    notice: str | None
    model: str
    endpoint: str


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_messages(findings: str, slice_png: bytes, overlay_png: bytes) -> list[dict]:
    """The chat request: system prompt, then the findings and both images."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"Measured findings (from the segmentation):\n{findings}"},
                {"type": "text", "text": "Image 1: the axial CT slice. Image 2: the same slice with the overlay."},
                {"type": "image_url", "image_url": {"url": png_data_url(slice_png)}},
                {"type": "image_url", "image_url": {"url": png_data_url(overlay_png)}},
            ],
        },
    ]


def _notice_for(exc: Exception, settings: LlmSettings) -> str:
    import openai

    where = f"the LLM endpoint {settings.host}"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{where} refused the API key; check it in Settings or LIVERHEALTH_LLM_API_KEY."
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within {settings.timeout_s:.0f} s."
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach {where}; check the network or LIVERHEALTH_LLM_BASE_URL."
    if isinstance(exc, openai.RateLimitError):
        return f"{where} is rate-limiting requests; try again later."
    if isinstance(exc, openai.NotFoundError):
        return f"{where} does not know the model '{settings.model}' (HTTP 404)."
    if isinstance(exc, openai.APIStatusError):
        return f"{where} failed with HTTP {exc.status_code} after {settings.max_retries + 1} attempts."
    return f"the answer of {where} could not be read ({exc.__class__.__name__})."


class _Deadline(Exception):
    """The whole draft ran out of time."""


class _CrossOriginRedirect(Exception):
    """The endpoint redirected to another origin; the request is not re-sent there."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme))


def _http_client(base_url: str, deadline: float):
    """An httpx client that follows redirects on the endpoint's own origin only, and whose every
    read and connect is bounded by what is left of the deadline."""
    import httpx2 as httpx  # the HTTP client of openai 3.x

    home = _origin(base_url)

    def check_redirect(response: httpx.Response) -> None:
        if response.is_redirect:
            target = urljoin(str(response.request.url), response.headers.get("location", ""))
            if _origin(target) != home:
                raise _CrossOriginRedirect(safe_url(target))

    def bounded(request: httpx.Request) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline()
        request.extensions["timeout"] = httpx.Timeout(left).as_dict()

    return httpx.Client(follow_redirects=True, event_hooks={"request": [bounded], "response": [check_redirect]})


def _retryable(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
        return not isinstance(exc.__cause__, (_CrossOriginRedirect, _Deadline))
    return isinstance(exc, openai.RateLimitError | openai.InternalServerError)


def _failure_notice(exc: BaseException, settings: LlmSettings) -> str:
    cause = exc if isinstance(exc, (_Deadline, _CrossOriginRedirect)) else exc.__cause__ or exc.__context__
    if isinstance(cause, _Deadline) or isinstance(exc, _Deadline):
        return f"No LLM draft: the LLM endpoint {settings.host} did not finish within {settings.timeout_s:.0f} s."
    if isinstance(cause, _CrossOriginRedirect):
        return (
            f"No LLM draft: the LLM endpoint {settings.host} redirected to another server ({cause}); "
            "the request was not sent there. Set LIVERHEALTH_LLM_BASE_URL to the real endpoint."
        )
    return f"No LLM draft: {_notice_for(exc, settings)}"  # type: ignore[arg-type]


def request_draft(
    findings: str,
    slice_png: bytes,
    overlay_png: bytes,
    settings: LlmSettings | None = None,
    on_text: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DraftResult:
    """Stream a draft from the model; ``on_text`` receives each piece as it arrives.

    One deadline (``timeout_s``) covers the whole draft, retries included; an answer longer
    than ``MAX_DRAFT_CHARS`` is cut there; a redirect to another origin is not followed.
    """
    settings = settings or LlmSettings.from_environment()
    endpoint = settings.endpoint
    url, key = settings.connection()
    key = key or ("not-needed" if settings.is_local else None)
    if not key:
        return DraftResult(
            None,
            "No LLM draft: no API key is set (LIVERHEALTH_LLM_API_KEY or DASHSCOPE_API_KEY).",
            settings.model,
            endpoint,
        )
    try:
        import openai
    except ImportError:
        return DraftResult(
            None,
            "No LLM draft: the openai package is not installed (pip install 'liverhealth[llm]').",
            settings.model,
            endpoint,
        )
    deadline = time.monotonic() + settings.timeout_s
    http = _http_client(url, deadline)
    client = openai.OpenAI(api_key=key, base_url=url, timeout=settings.timeout_s, max_retries=0, http_client=http)
    messages = build_messages(findings, slice_png, overlay_png)
    notice: str | None = None
    pieces: list[str] = []
    try:
        for attempt in range(settings.max_retries + 1):
            pieces, length = [], 0
            try:
                stream = client.chat.completions.create(
                    model=settings.model, temperature=0.2, stream=True, messages=messages
                )
                with stream:
                    for chunk in stream:
                        if cancel is not None and cancel():
                            return DraftResult(None, "No LLM draft: cancelled by the user.", settings.model, endpoint)
                        if time.monotonic() > deadline:
                            raise _Deadline()
                        delta = chunk.choices[0].delta.content if chunk.choices else None
                        if not delta:
                            continue
                        delta = delta[: MAX_DRAFT_CHARS - length]
                        pieces.append(delta)
                        length += len(delta)
                        if on_text is not None:
                            on_text(delta)
                        if length >= MAX_DRAFT_CHARS:
                            notice = f"the draft was cut at {MAX_DRAFT_CHARS} characters"
                            break
                break
            except Exception as exc:  # the SDK raises many types; each becomes a notice, never a crash
                if attempt < settings.max_retries and _retryable(exc) and time.monotonic() < deadline - 1:
                    time.sleep(min(0.5 * 2**attempt, max(deadline - time.monotonic() - 1, 0)))
                    continue
                return DraftResult(None, _failure_notice(exc, settings), settings.model, endpoint)
    finally:
        client.close()
        http.close()
    text = "".join(pieces).strip()
    if not text:
        return DraftResult(
            None, f"No LLM draft: the LLM endpoint {settings.host} returned an empty answer.", settings.model, endpoint
        )
    return DraftResult(text, f"Note: {notice}." if notice else None, settings.model, endpoint)
