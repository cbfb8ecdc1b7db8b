import { describe, expect, it } from "vitest";
import { HIDDEN, looksSecret, withoutSecrets } from "../../config/echo";

describe("the echo policy of config errors", () => {
  it.each([
    ["an OpenSSH private key's body, even in short lines", "b3BlbnNzaC1rZXktdjEAAAA\nBG5vbmUAAAAE"],
    ["a PEM private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"],
    ["an age private key", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"],
    ["a GitHub token", "ghp_4Fq9ZkX2mV7pR1sT8uW3yB6nC0dE5gH2jK4L"],
    ["an AWS access key", "AKIAIOSFODNN7EXAMPLE"],
    ["a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"],
    ["an R2 secret access key", "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed"],
    ["a Cloudflare API token", "Xk9mQ2vR7tY4wB8nL1pC6sD3fG5hJ0aZ_e2Ui8oO"],
  ])("hides %s", (_what, value) => {
    expect(looksSecret(value)).toBe(true);
    expect(withoutSecrets(`got "${value}"`)).not.toMatch(/[A-Za-z0-9]{12,}(?<!hidden)/);
  });

  it.each([
    ["https://hooks.slack.com/services/T0001/B0002/abcdefghijkl", "https://hooks.slack.com/services/"],
    ["https://discord.com/api/webhooks/1234/abcdefghijkl", "https://discord.com/api/webhooks/"],
    ["https://hc-ping.com/0b5c7e4e-1a2b-4c3d-9e8f-001122334455", "https://hc-ping.com/"],
  ])("hides the credential of an alert channel's URL %s", (url, kept) => {
    expect(withoutSecrets(url)).toBe(`${kept}${HIDDEN}`);
  });

  it("hides the password of a URL and keeps the rest", () => {
    expect(withoutSecrets("https://bot:s3cr3t-pa55@registry.example.com/v2")).toBe(
      `https://bot:${HIDDEN}@registry.example.com/v2`,
    );
  });

  it.each([
    [
      "an SSH public key",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC5PqA7hUthsrNf7q5yfsuPKS1KH8KVKN0HK6mfvzZMO alice@example.com",
    ],
    ["an image digest", "ghcr.io/acme/api@sha256:af3049be8788e1ded860bc624d92059fcc7b2db1e40d844d609c9b5a696cf2c8"],
    ["an account id", "0123456789abcdef0123456789abcdef"],
    ["an age public key", "age19575cackxwrpfkergc5tfva3puvfaa2gx4qgvjk3uhnv6ujzdq9q8pn3ma"],
    ["a long hostname", "a-rather-long-hostname-for-the-api-service.staging.example.com"],
  ])("shows %s", (_what, value) => {
    expect(withoutSecrets(`got "${value}"`)).toBe(`got "${value}"`);
  });

  it("hides the values it is told are secret, also inside a JSON string, but not short ones", () => {
    expect(withoutSecrets('got "a\\"quoted\\" value"', ['a"quoted" value'])).toBe(`got "${HIDDEN}"`);
    expect(withoutSecrets("port 3000", ["3000"])).toBe("port 3000");
  });
});
