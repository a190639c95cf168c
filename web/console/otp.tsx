/** The one-time code field for actions that need step-up, and the header it sends. */

export function OtpField(props: { id: string; label?: string }) {
  return (
    <label>
      {props.label ?? 'One-time code (TOTP, when required)'}
      <input id={props.id} name="otp" type="text" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" />
    </label>
  );
}

export const otpHeaders = (id: string): Record<string, string> => {
  const v = (document.getElementById(id) as HTMLInputElement | null)?.value.trim();
  return v ? { 'x-sluice-otp': v } : {};
};
