"""Creates template.yaml's data resources wherever a boto3 session points (moto in-process or moto server) and returns
the RELAYDESK_* environment the functions would receive. Every name, key, index, TTL and redrive comes from the
template itself: there is no second list of resources to keep in step."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# Everything local (smarthosts, token endpoints) listens on loopback: the operator's allow-list names it.
DEFAULT_PARAMETERS = {"MailDomain": "mail.relaydesk.test", "Environment": "sandbox",
                      "AllowedPrivateDestinations": "127.0.0.0/8,::1/128", "AllowedTokenHosts": "127.0.0.1,localhost"}
_NO_VALUE = object()  # AWS::NoValue: the property or list item disappears


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, !If, ...) turned into their long forms."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path) -> dict:
    return copy.deepcopy(_load_cached(path.resolve(), path.stat().st_mtime_ns))


@lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int) -> dict:  # mtime in the key: an edited template is read again
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506  # a SafeLoader subclass


class _Clients:
    """One boto3 client per service for the whole provisioning (creating clients is the slow part)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}
        self.region_name = session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]


class _Unresolved(Exception):
    """A reference to a resource not created yet; the resource waits for a later pass."""


def _kebab(logical_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()


class _Stack:
    """The template with parameters, pseudo parameters and the physical ids of what has been created so far."""

    def __init__(self, template: dict, parameters: dict[str, str], name: str, region: str, account: str) -> None:
        self.template = template
        self.name, self.region, self.account = name, region, account
        declared = template.get("Parameters", {})
        self.parameters = {key: str(spec["Default"]) for key, spec in declared.items() if "Default" in spec}
        self.parameters.update({key: value for key, value in parameters.items() if key in declared})
        self.refs: dict[str, str] = {}
        self.stand_ins: set[str] = set()
        self.attributes: dict[tuple[str, str], str] = {}
        self.pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": name,
                       "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": _NO_VALUE}

    def physical_name(self, logical_id: str) -> str:
        return f"{self.name}-{_kebab(logical_id)}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _intrinsic(self, key: str, argument: Any) -> Any:  # one branch per intrinsic
        if key == "Ref":
            return self._ref(argument)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument
            if (logical_id, attribute) not in self.attributes:
                raise _Unresolved(logical_id)
            return self.attributes[(logical_id, attribute)]
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, self.resolve(variables))
        if key == "Fn::If":
            name, if_true, if_false = argument
            return self.resolve(if_true if self.condition(name) else if_false)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument)[0]
        if key == "Fn::And":
            return all(self.resolve(argument))
        if key == "Fn::Or":
            return any(self.resolve(argument))
        if key == "Fn::FindInMap":
            mapping, top, second = self.resolve(argument)
            return self.template["Mappings"][mapping][top][second]
        if key == "Fn::Join":
            separator, items = self.resolve(argument)
            return separator.join(str(item) for item in items)
        if key == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = self.resolve(argument)
            return text.split(separator)
        raise NotImplementedError(f"intrinsic {key} is not understood by local/aws_resources.py")

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise _Unresolved(name)

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self._intrinsic("Fn::GetAtt", name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# ---------------------------------------------------------------- one creator per resource type


def _create_kms_key(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    kms = session.client("kms")
    key = kms.create_key(Description=props.get("Description", logical_id),
                         Policy=json.dumps(props["KeyPolicy"]))["KeyMetadata"]
    stack.refs[logical_id] = key["KeyId"]
    stack.attributes[(logical_id, "Arn")] = key["Arn"]
    stack.attributes[(logical_id, "KeyId")] = key["KeyId"]


def _create_kms_alias(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    session.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    stack.refs[logical_id] = props["AliasName"]


def _create_table(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    dynamodb = session.client("dynamodb")
    name = props.get("TableName") or stack.physical_name(logical_id)
    kwargs: dict[str, Any] = {"TableName": name, "AttributeDefinitions": props["AttributeDefinitions"],
                              "KeySchema": props["KeySchema"], "BillingMode": props.get("BillingMode", "PROVISIONED")}
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled")),
                                      **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                                      **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {})}
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    table = dynamodb.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    stack.refs[logical_id] = name
    stack.attributes[(logical_id, "Arn")] = table["TableArn"]
    if "LatestStreamArn" in table:
        stack.attributes[(logical_id, "StreamArn")] = table["LatestStreamArn"]


def _create_bucket(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    s3 = session.client("s3")
    name = props.get("BucketName") or stack.physical_name(logical_id)
    kwargs: dict[str, Any] = {"Bucket": name}
    if stack.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": stack.region}
    s3.create_bucket(**kwargs)
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [{("Apply" + key if key == "ServerSideEncryptionByDefault" else key): value
                  for key, value in rule.items()}
                 for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
            "Status": props["VersioningConfiguration"]["Status"]})
    stack.refs[logical_id] = name
    stack.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    stack.attributes[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"
    stack.attributes[(logical_id, "RegionalDomainName")] = f"{name}.s3.{stack.region}.amazonaws.com"


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                     "ReceiveMessageWaitTimeSeconds", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
                     "SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication", "RedrivePolicy",
                     "RedriveAllowPolicy")


def _create_queue(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    sqs = session.client("sqs")
    name = props.get("QueueName") or stack.physical_name(logical_id) + (".fifo" if props.get("FifoQueue") else "")
    attributes = {}
    for key in _QUEUE_ATTRIBUTES:
        if key in props:
            value = props[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value).lower() if isinstance(
                value, bool) else str(value)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.refs[logical_id] = url
    stack.attributes.update({(logical_id, "Arn"): arn, (logical_id, "QueueName"): name,
                             (logical_id, "QueueUrl"): url})


def _create_ses_identity(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    identity = props["EmailIdentity"]
    ses = session.client("ses")
    if "@" in identity:
        ses.verify_email_identity(EmailAddress=identity)
    else:
        ses.verify_domain_identity(Domain=identity)  # moto verifies at once, so send_raw_email works
        _teach_moto_ses_subdomains()
    stack.refs[logical_id] = identity


def _teach_moto_ses_subdomains() -> None:
    """SES lets every subdomain of a verified domain send (support@acme.<mail domain>, a system address) without
    verifying it; moto matches the exact domain only. Give an in-process moto (mock_aws or a threaded server) the
    documented rule. Idempotent; a moto server in another process is untouched."""
    try:
        from moto.ses.models import SESBackend
    except ImportError:
        return
    exact = SESBackend._is_verified_address
    if getattr(exact, "subdomains_inherit", False):
        return

    def is_verified(self: Any, source: str) -> bool:
        if exact(self, source):
            return True
        labels = parseaddr(source)[1].rpartition("@")[2].lower().split(".")
        return any(".".join(labels[i:]) in self.email_identities for i in range(1, len(labels) - 1))

    is_verified.subdomains_inherit = True  # type: ignore[attr-defined]
    SESBackend._is_verified_address = is_verified


def _create_configuration_set(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    name = props.get("Name") or stack.physical_name(logical_id)
    session.client("ses").create_configuration_set(ConfigurationSet={"Name": name})
    stack.refs[logical_id] = name


def _create_rule_set(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    name = props.get("RuleSetName") or stack.physical_name(logical_id)
    ses = session.client("ses")
    ses.create_receipt_rule_set(RuleSetName=name)
    ses.set_active_receipt_rule_set(RuleSetName=name)  # the operator's manual step after deploy (docs/DEPLOY.md)
    stack.refs[logical_id] = name


def _create_receipt_rule(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    rule = dict(props["Rule"])
    # No Lambda exists in moto; the local inbound MX invokes the handler itself, as SES's Lambda action would.
    rule["Actions"] = [action for action in rule.get("Actions", []) if "LambdaAction" not in action]
    session.client("ses").create_receipt_rule(RuleSetName=props["RuleSetName"], Rule=rule)
    stack.refs[logical_id] = rule["Name"]


def _create_secret(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    """A stack-owned secret (the link signing key): its value generated as GenerateSecretString asks."""
    secrets = session.client("secretsmanager")
    generate = props.get("GenerateSecretString", {})
    value = props.get("SecretString") or secrets.get_random_password(
        PasswordLength=int(generate.get("PasswordLength", 32)),
        ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)))["RandomPassword"]
    kwargs = {"Name": props.get("Name") or stack.physical_name(logical_id), "SecretString": value}
    if "KmsKeyId" in props:
        kwargs["KmsKeyId"] = props["KmsKeyId"]
    arn = secrets.create_secret(**kwargs)["ARN"]
    stack.refs[logical_id] = arn  # Ref of AWS::SecretsManager::Secret is its ARN
    stack.attributes[(logical_id, "Id")] = arn


def _create_user_pool(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    """moto's Cognito: the pool with its custom attributes, password policy and MFA setting, as CloudFormation would."""
    cognito = session.client("cognito-idp")
    kwargs: dict[str, Any] = {"PoolName": props.get("UserPoolName") or stack.physical_name(logical_id)}
    for key in ("Policies", "Schema", "AutoVerifiedAttributes", "UsernameAttributes", "MfaConfiguration",
                "AdminCreateUserConfig", "AccountRecoverySetting", "DeletionProtection"):
        if key in props:
            kwargs[key] = props[key]
    pool = cognito.create_user_pool(**kwargs)["UserPool"]
    stack.refs[logical_id] = pool["Id"]
    stack.attributes[(logical_id, "Arn")] = pool["Arn"]
    stack.attributes[(logical_id, "ProviderURL")] = f"https://cognito-idp.{stack.region}.amazonaws.com/{pool['Id']}"


def _create_user_pool_group(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    session.client("cognito-idp").create_group(**{key: props[key] for key in (
        "UserPoolId", "GroupName", "Description", "Precedence") if key in props})
    stack.refs[logical_id] = props["GroupName"]


def _create_user_pool_client(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    kwargs = {key: props[key] for key in (
        "UserPoolId", "ClientName", "GenerateSecret", "ExplicitAuthFlows", "ReadAttributes", "WriteAttributes",
        "PreventUserExistenceErrors", "EnableTokenRevocation", "IdTokenValidity", "AccessTokenValidity",
        "RefreshTokenValidity", "TokenValidityUnits") if key in props}
    client = session.client("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
    stack.refs[logical_id] = client["ClientId"]


def _create_role(session: Any, stack: _Stack, logical_id: str, props: dict) -> None:
    """An IAM role with its trust and inline policies (moto keeps them; it does not enforce them)."""
    iam = session.client("iam")
    name = props.get("RoleName") or stack.physical_name(logical_id)[:64]
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                           Description=props.get("Description", ""),
                           MaxSessionDuration=int(props.get("MaxSessionDuration", 3600)))["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    stack.refs[logical_id] = name
    stack.attributes[(logical_id, "Arn")] = role["Arn"]


_CREATORS: dict[str, Callable[[Any, _Stack, str, dict], None]] = {
    "AWS::Cognito::UserPool": _create_user_pool,
    "AWS::Cognito::UserPoolGroup": _create_user_pool_group,
    "AWS::Cognito::UserPoolClient": _create_user_pool_client,
    "AWS::IAM::Role": _create_role,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::KMS::Key": _create_kms_key,
    "AWS::KMS::Alias": _create_kms_alias,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SQS::Queue": _create_queue,
    "AWS::SES::EmailIdentity": _create_ses_identity,
    "AWS::SES::ReceiptRuleSet": _create_rule_set,
    "AWS::SES::ReceiptRule": _create_receipt_rule,
    "AWS::SES::ConfigurationSet": _create_configuration_set,
}


def _stand_in_for_code(stack: _Stack, logical_id: str, resource_type: str) -> None:
    """Functions, APIs, log groups: not created locally, but their Ref/Arn must resolve where the template uses them."""
    name = stack.physical_name(logical_id)
    stack.stand_ins.add(logical_id)
    stack.refs[logical_id] = name
    service = resource_type.split("::")[1].lower().replace("serverless", "lambda")
    kind = "function" if "Function" in resource_type else _kebab(resource_type.split("::")[-1])
    stack.attributes[(logical_id, "Arn")] = f"arn:aws:{service}:{stack.region}:{stack.account}:{kind}:{name}"
    if resource_type == "AWS::CloudFront::Distribution":  # the local console site stands in for it
        stack.attributes[(logical_id, "DomainName")] = f"{name}.cloudfront.invalid"


def _create_all(session: Any, stack: _Stack) -> None:
    pending = {}
    for logical_id, resource in stack.template["Resources"].items():
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        if resource["Type"] in _CREATORS:
            pending[logical_id] = resource
        else:
            _stand_in_for_code(stack, logical_id, resource["Type"])
    while pending:  # a resource waits until what it references exists (e.g. a queue for its dead-letter queue)
        progressed = False
        for logical_id, resource in list(pending.items()):
            try:
                props = stack.resolve(resource.get("Properties", {}))
            except _Unresolved:
                continue
            _CREATORS[resource["Type"]](session, stack, logical_id, props)
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise ValueError(f"template.yaml: cannot resolve the references of {sorted(pending)}")


def _environment(stack: _Stack) -> dict[str, str]:
    from relaydesk.cli.context import STACK_OUTPUTS

    template = stack.template
    env = {key: str(value) for key, value in stack.resolve(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})).items()}
    # A function's ARN handed to another AWS service (the rotation function, for Secrets Manager's RotateSecret)
    # names code moto cannot run: left out, as the outputs naming it are, so the local stack rotates in process.
    # A function's name (its Ref) stays: the local Lambda API (local/lambda_invoke.py) invokes it by that name.
    code_arns = {value for (logical_id, attribute), value in stack.attributes.items()
                 if logical_id in stack.stand_ins and attribute == "Arn"}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            for key, value in variables.items():
                if not key.startswith("RELAYDESK_"):
                    continue
                try:
                    resolved = str(stack.resolve(value))
                except _Unresolved:  # names code that is not created locally (the attachments function's URL)
                    continue
                if resolved not in code_arns:
                    env[key] = resolved
    # Outputs the CLI reads, except those naming code that does not exist locally (e.g. the rotation function).
    for logical_id in stack.stand_ins:
        stack.refs.pop(logical_id, None)
        stack.attributes = {key: value for key, value in stack.attributes.items() if key[0] != logical_id}
    for output_name, output in template.get("Outputs", {}).items():
        if output_name in STACK_OUTPUTS:
            try:
                env.setdefault(STACK_OUTPUTS[output_name], str(stack.resolve(output["Value"])))
            except _Unresolved:
                continue
    return env


def provision(session: Any, *, template_path: Path = Path("template.yaml"), name_prefix: str = "relaydesk-local",
              parameters: dict[str, str] | None = None, http_api_auth: dict[str, dict] | None = None,
              ) -> dict[str, str]:
    """Create the template's tables, bucket, queues, KMS key, SES identity/rules, user pool and roles; return the
    functions' env.

    `name_prefix` plays the stack name. `parameters` override the template's (MailDomain, Environment, ...).
    `http_api_auth`, when given, receives each HTTP API's `Auth` with its references resolved (the JWT authorizer's
    issuer and audience), for the local stand-in of API Gateway.
    """
    session = _Clients(session)
    account = session.client("sts").get_caller_identity()["Account"]
    stack = _Stack(load_template(template_path), {**DEFAULT_PARAMETERS, **(parameters or {})}, name_prefix,
                   session.region_name or "us-east-1", account)
    _create_all(session, stack)
    if http_api_auth is not None:
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] == "AWS::Serverless::HttpApi":
                http_api_auth[logical_id] = stack.resolve(resource["Properties"].get("Auth", {}))
    return _environment(stack)


def http_api_routes(template_path: Path = Path("template.yaml")) -> dict[str, list[tuple[str, str, str]]]:
    """Each HTTP API's routes as template.yaml declares them: API logical id -> [(method, path, functions/<dir>)]."""
    routes: dict[str, list[tuple[str, str, str]]] = {}
    for resource in load_template(template_path)["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function = Path(resource["Properties"]["CodeUri"]).name
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                routes.setdefault(props["ApiId"]["Ref"], []).append((props["Method"].upper(), props["Path"], function))
    return routes


def function_settings(template_path: Path = Path("template.yaml")) -> dict[str, dict[str, Any]]:
    """What the local stack needs to run each function as Lambda would, keyed by its directory under functions/:
    Timeout and MemorySize (Globals applied) and, for async invocations, MaximumRetryAttempts (Lambda's default 2)."""
    template = load_template(template_path)
    defaults = template.get("Globals", {}).get("Function", {})
    settings = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        settings[Path(props["CodeUri"]).name] = {
            "Timeout": props.get("Timeout", defaults.get("Timeout", 3)),
            "MemorySize": props.get("MemorySize", defaults.get("MemorySize", 128)),
            "MaximumRetryAttempts": props.get("EventInvokeConfig", {}).get("MaximumRetryAttempts", 2),
        }
    return settings


def receipt_s3_prefix(template_path: Path = Path("template.yaml")) -> str:
    """The key prefix SES's S3 action stores raw mail under (the object key is prefix + SES message id)."""
    for resource in load_template(template_path)["Resources"].values():
        if resource["Type"] == "AWS::SES::ReceiptRule":
            for action in resource["Properties"]["Rule"]["Actions"]:
                if "S3Action" in action:
                    return action["S3Action"].get("ObjectKeyPrefix", "")
    raise ValueError("template.yaml has no SES receipt rule with an S3 action")


def _function_dirs(template: dict) -> dict[str, str]:
    """Logical id of each function -> its directory under functions/."""
    return {logical_id: Path(resource["Properties"]["CodeUri"]).name
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"}


def function_names(template_path: Path = Path("template.yaml"), name_prefix: str = "relaydesk-local",
                   ) -> dict[str, str]:
    """The name each function has in a stack provisioned by `provision` (what its Ref resolves to, and so what a
    function that invokes it is given) -> its directory under functions/."""
    return {f"{name_prefix}-{_kebab(logical_id)}": directory
            for logical_id, directory in _function_dirs(load_template(template_path)).items()}


def physical_name(logical_id: str, name_prefix: str = "relaydesk-local") -> str:
    """The name `provision` gives a resource the template does not name (a bucket, a table)."""
    return f"{name_prefix}-{_kebab(logical_id)}"


def http_api_cors(template_path: Path = Path("template.yaml")) -> dict[str, dict]:
    """Each HTTP API's CorsConfiguration as template.yaml declares it (AllowOrigins left for the caller to resolve)."""
    return {logical_id: resource["Properties"]["CorsConfiguration"]
            for logical_id, resource in load_template(template_path)["Resources"].items()
            if resource["Type"] == "AWS::Serverless::HttpApi" and "CorsConfiguration" in resource["Properties"]}


def stream_mappings(template_path: Path = Path("template.yaml"), *, name_prefix: str = "relaydesk-local",
                    ) -> list[dict[str, Any]]:
    """The DynamoDB-stream event source mappings: function directory, table and failure queue names (as `provision`
    names them), filters, batch size and retries."""
    template = load_template(template_path)
    functions = _function_dirs(template)
    mappings = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        source = props.get("EventSourceArn")
        if resource["Type"] != "AWS::Lambda::EventSourceMapping" or not (
                isinstance(source, dict) and source.get("Fn::GetAtt", [None, None])[1] == "StreamArn"):
            continue
        failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", {}).get("Fn::GetAtt")
        mappings.append({
            "function": functions[props["FunctionName"]["Ref"]],
            "table": f"{name_prefix}-{_kebab(source['Fn::GetAtt'][0])}",
            "filters": [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])],
            "batch_size": int(props.get("BatchSize", 100)),
            "max_retries": int(props.get("MaximumRetryAttempts", 3)),
            "on_failure_queue": f"{name_prefix}-{_kebab(failure[0])}" if failure else None,
        })
    return mappings


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedules(template_path: Path = Path("template.yaml")) -> list[dict[str, Any]]:
    """Each function's `Schedule` events: directory, period in seconds, and the event it is invoked with."""
    template = load_template(template_path)
    found = []
    for logical_id, directory in _function_dirs(template).items():
        for event in template["Resources"][logical_id]["Properties"].get("Events", {}).values():
            if event["Type"] != "Schedule":
                continue
            match = _RATE.match(event["Properties"]["Schedule"])
            if match is None:
                raise ValueError(f"{logical_id}: only rate(...) schedules run locally")
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
            found.append({"function": directory, "seconds": seconds,
                          "event": json.loads(event["Properties"].get("Input", "{}"))})
    return found
