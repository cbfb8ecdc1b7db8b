/**
 * SSH through the stack's own tunnel (`sshThroughTunnel`): a proxied name for the server's sshd,
 * `<prefix>-ssh.<domain>`, behind a Cloudflare Access application whose one policy admits the
 * stack's deploy service token and nobody else. The tunnel's ingress (Edge) sends the name to
 * the host's sshd. CI runs `cloudflared access tcp` with the token (scripts/ssh-through-tunnel.sh),
 * so `pulumi up` reaches the server from a runner whose address no firewall lists.
 *
 * Cost: Access is free for up to 50 users on Cloudflare Zero Trust's free plan; a service token
 * is not a user.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";

export interface SshAccessArgs {
  /** `<app>-<stack>`: names the token, the policy and the application. */
  prefix: string;
  accountId: string;
  zoneId: pulumi.Input<string>;
  /** The name SSH answers on (`sshHostname`). */
  hostname: string;
  /** The tunnel the name points to. */
  tunnelId: pulumi.Input<string>;
}

export class SshAccess extends pulumi.ComponentResource {
  /** The service token's Client ID (CF-Access-Client-Id): not a secret on its own. */
  readonly clientId: pulumi.Output<string>;
  /** The service token's Client Secret (CF-Access-Client-Secret). Secret. */
  readonly clientSecret: pulumi.Output<string>;

  constructor(name: string, args: SshAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:edge:SshAccess", name, {}, opts);
    const parent = { parent: this };

    new cloudflare.DnsRecord(
      `${name}-cname`,
      {
        zoneId: args.zoneId,
        name: args.hostname,
        type: "CNAME",
        content: pulumi.interpolate`${args.tunnelId}.cfargotunnel.com`,
        proxied: true,
        ttl: 1,
        comment: `${args.prefix}: SSH through Cloudflare Tunnel, behind Access (managed by Pulumi)`,
      },
      parent,
    );
    const token = new cloudflare.ZeroTrustAccessServiceToken(
      `${name}-deploy-token`,
      {
        accountId: args.accountId,
        name: `${args.prefix} deploy`,
        // A token that expired would stop every deploy on a day nobody chose: it lives until it
        // is replaced (docs/rotate-secrets.md) or the stack is destroyed.
        duration: "forever",
      },
      parent,
    );
    const policy = new cloudflare.ZeroTrustAccessPolicy(
      `${name}-deploy-policy`,
      {
        accountId: args.accountId,
        name: `${args.prefix} deploy token only`,
        // non_identity: a service token, not a person's login; nothing else is included.
        decision: "non_identity",
        includes: [{ serviceToken: { tokenId: token.id } }],
      },
      parent,
    );
    new cloudflare.ZeroTrustAccessApplication(
      `${name}-app`,
      {
        accountId: args.accountId,
        name: `${args.prefix} SSH`,
        type: "self_hosted",
        domain: args.hostname,
        policies: [{ id: policy.id, precedence: 1 }],
        appLauncherVisible: false,
        // A refused token gets a 401, not a redirect to a login page no runner can use.
        serviceAuth401Redirect: true,
        sessionDuration: "1h",
      },
      parent,
    );

    this.clientId = token.clientId;
    this.clientSecret = pulumi.secret(token.clientSecret);
    this.registerOutputs({ clientId: this.clientId, clientSecret: this.clientSecret });
  }
}
